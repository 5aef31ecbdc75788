"""ispkit.stages._kernels"""
