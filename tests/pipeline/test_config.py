"""TOML configuration: exact round trips and clear errors."""

import re
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


@pytest.mark.parametrize("key, value, words", [
    ("exposure.ev", "abc", "parameter 'ev' expects a number, got 'abc'"),
    ("exposure.use_baseline", 3, "parameter 'use_baseline' expects true or false, got 3"),
    ("demosaic.method", 2.5, "parameter 'method' expects a string, got 2.5"),
])
def test_set_checks_each_value_against_the_parameter_type(key, value, words):
    import ispkit
    with pytest.raises(ConfigError, match=re.escape(words)):
        ispkit.load_preset("default").set({key: value})


def test_parameter_types_in_plain_words():
    from ispkit.pipeline.stage import describe_hint, param_matches
    hint = tuple[float, float, float] | None
    assert describe_hint(hint) == "a list of 3 numbers (or omitted)"
    assert param_matches((1, 2.0, 3), hint) and param_matches(None, hint)
    assert not param_matches((1, 2), hint) and not param_matches(("a", 1, 2), hint)
    assert not param_matches(True, float) and param_matches(2, float) and not param_matches(2.0, int)


def test_an_edited_preset_no_longer_calls_itself_by_the_preset_name(tmp_path):
    import ispkit
    pipe = ispkit.load_preset("default")
    assert pipe.set({"demosaic.method": "malvar2004"}).name == "default"  # no change, same pipeline
    edited = pipe.set({"demosaic.method": "menon2007"}).remove("highlights")
    assert edited.name == "default-edited"
    back = load_pipeline(edited.save(tmp_path / "mine.toml"))
    assert back.name == "default-edited" and back == edited
    assert edited.renamed("mine").name == "mine"
