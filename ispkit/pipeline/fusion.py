"""Graph compilation: fusers replace runs of stages by one equivalent fast stage.

The pipeline layer knows no concrete stage: stage packages register *fusers*,
functions that take the node list and return it with some runs replaced
(``ispkit.stages.fused`` fuses black level → … → OETF into one Numba pass).
A fused stage must give the same output as the run it replaces and fall back
to running that run itself when a frame does not suit it.
"""

from __future__ import annotations

from typing import Callable, Sequence

from .stage import Stage

__all__ = ["Fuser", "register_fuser", "fuse_nodes"]

Node = tuple[str, Stage]
Fuser = Callable[[Sequence[Node]], list[Node]]

_FUSERS: list[Fuser] = []


def register_fuser(fuser: Fuser) -> Fuser:
    """Add a fuser (idempotent); usable as a decorator."""
    if fuser not in _FUSERS:
        _FUSERS.append(fuser)
    return fuser


def fuse_nodes(nodes: Sequence[Node]) -> list[Node]:
    """Apply every registered fuser in order and return the compiled node list."""
    out = list(nodes)
    for fuser in _FUSERS:
        out = fuser(out)
    return out
