"""ispkit — a camera image signal processor mixing classical and neural stages."""
__version__ = "0.1.0"
