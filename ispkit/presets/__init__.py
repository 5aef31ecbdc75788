"""ispkit.presets"""
