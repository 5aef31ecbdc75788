"""Devices, dtypes and the inference context of neural stages.

``"auto"`` means CUDA when ``torch.cuda.is_available()``, else the CPU.
Half precision is applied through autocast (the weights stay float32):
float16 or bfloat16 on CUDA, bfloat16 on the CPU only when asked for.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from typing import Iterator

import torch

from ..errors import ParameterError

__all__ = ["DTYPES", "resolve_device", "resolve_dtype", "check_device_name", "inference_context"]

#: Names accepted for ``dtype`` parameters.
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_name(device: object, where: str = "device") -> str:
    """Return ``device`` if it is a valid device name (without probing the hardware)."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise ParameterError(
            f"{where}: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        )
    return device


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a :class:`torch.device`.

    Raises
    ------
    ParameterError : for CUDA when no CUDA device is present (or N is out of range).
    """
    name = check_device_name(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ParameterError(
            f"device {name!r} was asked for but torch sees no CUDA device "
            f"(torch {torch.__version__}); use device='auto' or 'cpu'"
        )
    dev = torch.device(name)
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ParameterError(
            f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) are present"
        )
    return dev


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """Turn ``"float32" | "float16" | "bfloat16"`` (or a torch dtype) into a :class:`torch.dtype`."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype in DTYPES.values():
            return dtype
    elif isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ParameterError(f"dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")


@contextlib.contextmanager
def inference_context(device: torch.device, dtype: str | torch.dtype | None = "float32") -> Iterator[None]:
    """Run the body under ``torch.inference_mode()`` and, for half dtypes, autocast.

    Notes
    -----
    float16 on the CPU is slow and poorly supported by CPU kernels, so it
    falls back to float32 with a warning; bfloat16 on the CPU uses CPU
    autocast (≈2× faster on AVX-512 BF16 machines, check the accuracy).
    """
    dt = resolve_dtype(dtype)
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.inference_mode())
        if dt is not torch.float32:
            if device.type == "cuda":
                stack.enter_context(torch.autocast("cuda", dtype=dt))
            elif dt is torch.bfloat16:
                stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
            else:
                warnings.warn("dtype='float16' needs CUDA; running in float32 on the CPU "
                              "(use dtype='bfloat16' for reduced precision on the CPU)",
                              RuntimeWarning, stacklevel=3)
        yield
