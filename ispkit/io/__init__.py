"""ispkit.io"""
