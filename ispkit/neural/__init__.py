"""ispkit.neural"""
