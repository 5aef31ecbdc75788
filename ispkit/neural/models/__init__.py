"""Pure ``nn.Module`` architectures (no I/O, no normalisation).

Each family lives in its own module (``fc4``, ``unet``, ``mwispnet``,
``pynet``, ``deepflexisp``, ``hat`` …) and is imported explicitly by
``ispkit.neural.zoo``, which registers the named variants.
"""
