"""Stage protocol, graph, registry, TOML config and runner (knows no concrete stage)."""

from .config import dumps_toml, loads_config
from .fusion import fuse_nodes, register_fuser
from .graph import Pipeline, load_pipeline, pipeline_from_config, pipeline_to_config, save_pipeline
from .registry import STAGES, get_stage_class, register_provider, register_stage, stage_names
from .runner import RunResult, run_stages
from .stage import STAGE_ONLY_KEYS, Stage, StageSpec

__all__ = [
    "Pipeline", "Stage", "StageSpec", "STAGE_ONLY_KEYS", "STAGES", "RunResult",
    "register_stage", "register_provider", "get_stage_class", "stage_names", "run_stages",
    "load_pipeline", "register_fuser", "fuse_nodes", "save_pipeline", "pipeline_from_config", "pipeline_to_config", "dumps_toml",
    "loads_config",
]
