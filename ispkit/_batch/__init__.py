"""Private helpers of :mod:`ispkit.batch`: discovery, the worker task, executors, manifest, gallery.

Import :mod:`ispkit.batch` instead; nothing here is public API.
"""
