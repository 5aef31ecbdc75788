"""ispkit.neural.models"""
