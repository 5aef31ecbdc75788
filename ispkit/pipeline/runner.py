"""Run a chain of named stages, optionally keeping every intermediate and timing."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..errors import ISPError
from ..frame import Frame
from .stage import Stage

__all__ = ["RunResult", "StageHook", "run_stages"]

#: ``hook(node_name, stage, output_frame, seconds)`` — called after each stage.
StageHook = Callable[[str, Stage, Frame, float], None]


@dataclass
class RunResult:
    """The output of a run plus what was recorded on the way."""

    output: Frame
    intermediates: dict[str, Frame] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return float(sum(self.timings.values()))


def run_stages(
    nodes: Sequence[tuple[str, Stage]],
    frame: Frame,
    *,
    keep_intermediates: bool = False,
    hooks: Sequence[StageHook] = (),
) -> RunResult:
    """Run ``nodes`` in order on ``frame``.

    Errors raised by a stage that are not ispkit errors are wrapped in
    :class:`~ispkit.errors.ISPError` naming the node, so a failing stage is
    always identifiable.
    """
    result = RunResult(output=frame)
    if keep_intermediates:
        result.intermediates["input"] = frame
    current = frame
    for name, stage in nodes:
        t0 = time.perf_counter()
        try:
            current = stage(current)
        except ISPError as exc:
            if f"{name!r}" not in str(exc) and f"{stage.type_name!r}" not in str(exc):
                raise type(exc)(f"in stage {name!r}: {exc}") from exc
            raise
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a bug or a library failure inside a stage
            raise ISPError(f"stage {name!r} ({type(stage).__name__}) failed: {type(exc).__name__}: {exc}") from exc
        dt = time.perf_counter() - t0
        result.timings[name] = dt
        if keep_intermediates:
            result.intermediates[name] = current
        for hook in hooks:
            hook(name, stage, current, dt)
    result.output = current
    return result
