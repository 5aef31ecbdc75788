"""TOML configuration: exact round trips and clear errors."""

from dataclasses import dataclass

import numpy as np
import pytest

from ispkit.errors import ConfigError
from ispkit.frame import Domain
from ispkit.pipeline import Pipeline, Stage, StageSpec, dumps_toml, load_pipeline
from ispkit.pipeline.registry import STAGES, register_stage


@dataclass(frozen=True)
class Knobs(Stage):
    type_name = "test_knobs"
    version = 2
    gain: float = 1.0
    count: int = 3
    name: str = 'tricky "quoted" \\ name'
    flag: bool = False
    points: tuple = ((0.0, 0.0), (0.5, 0.25), (1.0, 1.0))
    optional: float | None = None

    @property
    def spec(self):
        return StageSpec(in_domains=(Domain.CAMERA_RGB,))

    def process(self, frame):
        return frame


@pytest.fixture
def registered():
    register_stage(Knobs)
    yield Knobs
    STAGES.pop("test_knobs", None)


def test_round_trip_is_exact(tmp_path, registered):
    stage = Knobs(gain=0.1 + 0.2, count=7, flag=True, points=((0.0, 1e-9), (1.0, 1.0)))
    pipe = Pipeline([("first", stage), ("second", Knobs())], name="mine")
    path = pipe.save(tmp_path / "p.toml")
    back = load_pipeline(path)
    assert back == pipe and back.name == "mine" and back.names == ["first", "second"]
    assert back["first"].gain == 0.1 + 0.2
    assert back["first"].points == ((0.0, 1e-9), (1.0, 1.0))
    assert dumps_toml(back.to_config()) == path.read_text()
    assert not list(tmp_path.glob(".*"))  # no temp file left behind


def test_unknown_keys_raise(tmp_path, registered):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[stage]]\ntype = "test_knobs"\nversion = 2\n[stage.params]\ngian = 2.0\n')
    with pytest.raises(ConfigError, match="unknown parameter.*'gian'.*gain"):
        load_pipeline(bad)
    bad.write_text('[[stage]]\ntype = "test_knobs"\ncolour = 1\n')
    with pytest.raises(ConfigError, match="unknown key.*colour"):
        load_pipeline(bad)
    bad.write_text('nme = "x"\n[[stage]]\ntype = "test_knobs"\n')
    with pytest.raises(ConfigError, match="top-level.*nme"):
        load_pipeline(bad)
    bad.write_text('[[stage]]\ntype = "no_such_stage"\n')
    with pytest.raises(ConfigError, match="unknown stage type 'no_such_stage'"):
        load_pipeline(bad)
    bad.write_text('[[stage]]\ntype = "test_knobs"\nversion = 1\n')
    with pytest.raises(ConfigError, match="version 2"):
        load_pipeline(bad)
    bad.write_text("[[stage]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_pipeline(bad)
    with pytest.raises(ConfigError, match="no such pipeline file"):
        load_pipeline(tmp_path / "missing.toml")
    bad.write_text('name = "empty"\n')
    with pytest.raises(ConfigError, match="at least one"):
        load_pipeline(bad)


def test_wrong_param_type_is_config_error(registered):
    with pytest.raises(ConfigError):
        Pipeline.from_config({"stage": [{"type": "test_knobs", "version": 2, "params": {"nope": 1}}]})


def test_nonfinite_floats_round_trip(tmp_path, registered):
    pipe = Pipeline([Knobs(gain=float("inf"))])
    back = load_pipeline(pipe.save(tmp_path / "x.toml"))
    assert np.isinf(back["test_knobs"].gain)
