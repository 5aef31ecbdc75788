"""The :class:`Pipeline`: a validated chain of named stages.

A pipeline is immutable: ``replace``, ``insert_before``, ``insert_after``,
``remove`` and ``set`` return a new pipeline, so one line swaps a stage::

    pipe = pipe.replace("white_balance", IlluminantEstimation(method="fc4"))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ..errors import ConfigError, DomainError, MissingMetadataError, NotInvertibleError, unknown_name
import numpy as np

from ..frame import CaptureMetadata, Domain, Frame
from .config import config_from_nodes, dumps_toml, parse_pipeline_config, read_config, write_config
from .runner import RunResult, StageHook, run_stages
from .stage import STAGE_ONLY_KEYS, Stage

__all__ = ["Pipeline", "pipeline_to_config", "pipeline_from_config", "load_pipeline", "save_pipeline"]

NodeLike = Stage | tuple[str, Stage]
#: Appended to the name of a pipeline an edit changed (``default`` → ``default-edited``).
EDITED_SUFFIX = "-edited"


def _normalise(nodes: Iterable[NodeLike]) -> list[tuple[str, Stage]]:
    out: list[tuple[str, Stage]] = []
    seen: set[str] = set()
    for item in nodes:
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[0], str) or not isinstance(item[1], Stage):
                raise ConfigError(f"a pipeline node is a Stage or a (name, Stage) pair, got {item!r}")
            name, stage = item
        elif isinstance(item, Stage):
            base = item.type_name
            name, k = base, 2
            while name in seen:
                name, k = f"{base}_{k}", k + 1
            stage = item
        else:
            raise ConfigError(f"a pipeline node is a Stage or a (name, Stage) pair, got {type(item).__name__}")
        if name in seen:
            raise ConfigError(f"two pipeline nodes are named {name!r}; node names must be unique")
        seen.add(name)
        out.append((name, stage))
    return out


class Pipeline:
    """A linear chain of stages, checked when built.

    Parameters
    ----------
    stages : Stages or ``(name, stage)`` pairs; a bare stage is named by its
        ``type_name`` (``_2``, ``_3`` … on repeats).
    name : a label (presets use their preset name).
    input_domain : the domain of the frames it will receive, when known.
    input_provides : stage-only metadata the input already carries (e.g.
        ``("illuminant_rgb",)`` when you set it yourself).

    Raises
    ------
    DomainError : when adjacent stages do not chain (naming both).
    MissingMetadataError : when a stage requires stage-only metadata that no
        upstream stage provides.
    """

    def __init__(self, stages: Iterable[NodeLike], *, name: str = "pipeline",
                 input_domain: Domain | None = None, input_provides: Sequence[str] = ()) -> None:
        self._nodes = _normalise(stages)
        self.name = name
        self.input_domain = Domain(input_domain) if input_domain is not None else None
        self.input_provides = tuple(input_provides)
        self.validate()

    # -- inspection ---------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [n for n, _ in self._nodes]

    @property
    def stages(self) -> list[Stage]:
        return [s for _, s in self._nodes]

    @property
    def nodes(self) -> list[tuple[str, Stage]]:
        return list(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[tuple[str, Stage]]:
        return iter(list(self._nodes))

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __getitem__(self, name: str) -> Stage:
        return self._nodes[self._index(name)][1]

    def __repr__(self) -> str:
        chain = " → ".join(self.names)
        return f"Pipeline({self.name!r}: {chain})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pipeline) and self._nodes == other._nodes

    def _index(self, name: str) -> int:
        for i, (n, _) in enumerate(self._nodes):
            if n == name:
                return i
        raise unknown_name("pipeline node", name, self.names, f"pipeline {self.name!r}")

    # -- validation ---------------------------------------------------
    def validate(self) -> None:
        """Check that domains chain and stage-only metadata is provided upstream."""
        current: set[Domain] | None = {self.input_domain} if self.input_domain else None
        provided = set(self.input_provides)
        prev_name = "the input"
        for name, stage in self._nodes:
            spec = stage.spec
            accepted = set(spec.in_domains)
            if current is not None and not (current & accepted):
                have = "/".join(sorted(str(d) for d in current))
                want = "/".join(str(d) for d in spec.in_domains)
                raise DomainError(
                    f"pipeline {self.name!r}: {prev_name} produces {have} but stage {name!r} "
                    f"({type(stage).__name__}) takes {want}; reorder the stages or insert a conversion"
                )
            for key in spec.requires:
                if key in STAGE_ONLY_KEYS and key not in provided:
                    raise MissingMetadataError(
                        f"pipeline {self.name!r}: stage {name!r} needs {key!r}, which no stage before it "
                        f"provides; insert an estimator (e.g. white_balance estimation) upstream"
                    )
            provided.update(spec.provides)
            if spec.out_domain is not None:
                current = {spec.out_domain}
            else:
                current = (current & accepted) if current is not None else accepted
            prev_name = f"stage {name!r} ({type(stage).__name__})"

    @property
    def output_domains(self) -> set[Domain] | None:
        current: set[Domain] | None = {self.input_domain} if self.input_domain else None
        for _, stage in self._nodes:
            spec = stage.spec
            current = {spec.out_domain} if spec.out_domain else (
                (current & set(spec.in_domains)) if current else set(spec.in_domains))
        return current

    # -- editing (each returns a new pipeline) ------------------------
    def _with(self, nodes: list[NodeLike]) -> "Pipeline":
        """A new pipeline of ``nodes``; its name says it was edited (a saved copy is no longer the preset)."""
        new = Pipeline(nodes, name=self.name, input_domain=self.input_domain, input_provides=self.input_provides)
        if new._nodes != self._nodes and not self.name.endswith(EDITED_SUFFIX):
            new.name = self.name + EDITED_SUFFIX
        return new

    def renamed(self, name: str) -> "Pipeline":
        """The same pipeline under another name (the name is saved with it)."""
        return Pipeline(self._nodes, name=name, input_domain=self.input_domain, input_provides=self.input_provides)

    def replace(self, name: str, stage: Stage, *, new_name: str | None = None) -> "Pipeline":
        """Return a pipeline with node ``name`` replaced by ``stage`` (keeping its name)."""
        i = self._index(name)
        nodes: list[NodeLike] = list(self._nodes)
        nodes[i] = (new_name or name, stage)
        return self._with(nodes)

    def insert_before(self, name: str, stage: Stage, *, new_name: str | None = None) -> "Pipeline":
        """Return a pipeline with ``stage`` inserted before node ``name``."""
        i = self._index(name)
        nodes: list[NodeLike] = list(self._nodes)
        nodes.insert(i, (new_name, stage) if new_name else stage)
        return self._with(nodes)

    def insert_after(self, name: str, stage: Stage, *, new_name: str | None = None) -> "Pipeline":
        """Return a pipeline with ``stage`` inserted after node ``name``."""
        i = self._index(name)
        nodes: list[NodeLike] = list(self._nodes)
        nodes.insert(i + 1, (new_name, stage) if new_name else stage)
        return self._with(nodes)

    def append(self, stage: Stage, *, new_name: str | None = None) -> "Pipeline":
        """Return a pipeline with ``stage`` added at the end."""
        nodes: list[NodeLike] = list(self._nodes)
        nodes.append((new_name, stage) if new_name else stage)
        return self._with(nodes)

    def remove(self, name: str) -> "Pipeline":
        """Return a pipeline without node ``name``."""
        i = self._index(name)
        nodes: list[NodeLike] = list(self._nodes)
        del nodes[i]
        return self._with(nodes)

    def set(self, overrides: Mapping[str, Any] | None = None, **kw: Any) -> "Pipeline":
        """Return a pipeline with parameters changed: ``{"demosaic.method": "menon2007"}``.

        Keyword form uses ``__`` for the dot: ``set(demosaic__method="bilinear")``.
        """
        changes: dict[str, dict[str, Any]] = {}
        items = dict(overrides or {})
        items.update({k.replace("__", ".", 1): v for k, v in kw.items()})
        for key, value in items.items():
            if "." not in key:
                raise ConfigError(f"override {key!r} must look like 'stage.param' (e.g. 'demosaic.method')")
            node, param = key.split(".", 1)
            self._index(node)
            changes.setdefault(node, {})[param] = value
        nodes: list[NodeLike] = []
        for name, stage in self._nodes:
            if name in changes:
                from .stage import plain_to_params
                params = stage.to_config()["params"]
                params.update({k: v for k, v in changes[name].items()})
                stage = type(stage).from_params(
                    {k: plain_to_params(v) for k, v in params.items()}, where=f"node {name!r}")
            nodes.append((name, stage))
        return self._with(nodes)

    # -- inversion ----------------------------------------------------
    def inverse(self) -> "Pipeline":
        """Return the pipeline that undoes this one: each stage's ``inverse()``, in reverse order.

        A stage is invertible when it has an ``inverse()`` method returning a
        Stage (the protocol; the graph knows no concrete stage). The inverse
        runs on this pipeline's output frames, whose metadata still carries
        what the inverse stages read (gains, matrices, raw levels); its nodes
        keep the forward names.

        Raises
        ------
        NotInvertibleError : naming the first stage (from the output end)
            that has no inverse, and why.
        """
        nodes: list[NodeLike] = []
        for name, stage in reversed(self._nodes):
            method = getattr(stage, "inverse", None)
            label = f"pipeline {self.name!r}: stage {name!r} ({type(stage).__name__})"
            if not callable(method):
                raise NotInvertibleError(
                    f"{label} has no inverse (no inverse() method): its input cannot be recovered from its "
                    "output (stages that merge or discard information — denoising, sharpening, local contrast, "
                    "image-dependent tone mapping, learned stages — have none); remove it before inverting "
                    "the pipeline")
            try:
                inv = method()
            except NotInvertibleError as exc:
                raise NotInvertibleError(f"{label} cannot be inverted: {exc}") from exc
            if not isinstance(inv, Stage):
                raise NotInvertibleError(f"{label}: inverse() returned {type(inv).__name__}, not a Stage")
            nodes.append((name, inv))
        provided = set(self.input_provides)
        for _, stage in self._nodes:
            provided.update(stage.spec.provides)
        out = self.output_domains
        return Pipeline(nodes, name=f"{self.name}-inverse",
                        input_domain=next(iter(out)) if out is not None and len(out) == 1 else None,
                        input_provides=tuple(sorted(provided & STAGE_ONLY_KEYS)))

    # -- running ------------------------------------------------------
    def compiled_nodes(self) -> list[tuple[str, Stage]]:
        """The nodes as they run fused: runs of stages replaced by equivalent fast stages."""
        compiled = self.__dict__.get("_compiled")
        if compiled is None:
            from .fusion import fuse_nodes
            compiled = fuse_nodes(self._nodes)
            self.__dict__["_compiled"] = compiled
        return list(compiled)

    def render_codes(self, frame: Frame, bit_depth: int = 8,
                     out: np.ndarray | None = None) -> tuple[np.ndarray, CaptureMetadata] | None:
        """Integer codes straight from the compiled graph, or None when it cannot make them.

        When fusion compiled the whole pipeline into one node that quantises
        inside its kernel (see :meth:`Stage.render_codes`), the codes come
        from it, written into ``out`` when given; otherwise None and the
        caller runs the pipeline and quantises the float output.
        """
        nodes = self.compiled_nodes()
        if len(nodes) != 1:
            return None
        return nodes[0][1].render_codes(frame, bit_depth, out=out)

    def __call__(self, frame: Frame) -> Frame:
        """Run the (fused) pipeline on ``frame`` and return the output frame."""
        return run_stages(self.compiled_nodes(), frame).output

    def run(self, frame: Frame, *, keep_intermediates: bool = False,
            hooks: Sequence[StageHook] = (), fuse: bool | None = None) -> RunResult:
        """Run and return a :class:`RunResult` with per-stage timings.

        ``keep_intermediates`` records every stage's output (and runs unfused);
        ``fuse`` (default: when no intermediates are kept) runs the compiled
        nodes, so timings are then per fused node.
        """
        if fuse is None:
            fuse = not keep_intermediates
        nodes = self.compiled_nodes() if fuse else self._nodes
        return run_stages(nodes, frame, keep_intermediates=keep_intermediates, hooks=hooks)

    # -- configuration ------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """The pipeline as plain data (the TOML layout)."""
        return config_from_nodes(self._nodes, name=self.name, input_domain=self.input_domain,
                                 input_provides=self.input_provides)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, source: str = "config") -> "Pipeline":
        """Build a pipeline from plain data (unknown keys, types or versions raise ConfigError)."""
        parts = parse_pipeline_config(config, source=source)
        return cls(parts.nodes, name=parts.name, input_domain=parts.input_domain,
                   input_provides=parts.input_provides)

    def save(self, path: str | Path) -> Path:
        """Write the pipeline as TOML (``load`` reads it back identically)."""
        return write_config(self.to_config(), path)

    @classmethod
    def load(cls, path: str | Path) -> "Pipeline":
        """Read a pipeline TOML file."""
        return cls.from_config(read_config(path), source=str(path))

    def to_toml(self) -> str:
        """The pipeline as TOML text."""
        return dumps_toml(self.to_config())


def pipeline_to_config(pipe: Pipeline) -> dict[str, Any]:
    """The pipeline as plain data (see :meth:`Pipeline.to_config`)."""
    return pipe.to_config()


def pipeline_from_config(config: Mapping[str, Any], *, source: str = "config") -> Pipeline:
    """Build a pipeline from plain data (see :meth:`Pipeline.from_config`)."""
    return Pipeline.from_config(config, source=source)


def load_pipeline(path: str | Path) -> Pipeline:
    """Read a pipeline TOML file."""
    return Pipeline.load(path)


def save_pipeline(pipe: Pipeline, path: str | Path) -> Path:
    """Write ``pipe`` as TOML atomically; return the path."""
    return pipe.save(path)
