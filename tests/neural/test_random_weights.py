"""No silent random weights (issue 13 §3).

A learned stage without weights refuses to run, naming the model, where its
official weights come from and the options; ``random_weights=True`` /
``--allow-random-weights`` is the explicit opt-in (warned once, recorded); a
weights path that does not exist fails when the stage is built;
``create_model(name)`` without weights stays allowed (training starts there).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import ispkit
import ispkit.neural.reverse_isp  # registers the reverse_isp stage
from ispkit.cli import main
from ispkit.errors import (
    FallbackWarning,
    MissingWeightsError,
    ParameterError,
    RandomWeightsWarning,
    WeightsError,
)
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.io import write_dng
from ispkit.io.synthetic import synthesize_capture
from ispkit.neural import create_model, get_model_entry
from ispkit.neural.stages import LearnedRawToRGB, _NeuralStage
from ispkit.pipeline import STAGES, Pipeline
from ispkit.pipeline import models as pm
from ispkit.stages import BayerDenoise, BlackLevel, IlluminantEstimation, WhiteBalance

NEURAL_STAGES = sorted(name for name, cls in STAGES.items() if issubclass(cls, _NeuralStage))
OPTIONS = ("weights=", "weights='auto'", "--weights-dir", "ISPKIT_WEIGHTS", "random_weights=True",
           "--allow-random-weights")


@pytest.fixture(autouse=True)
def fresh_announcements(monkeypatch):
    """Each test sees the once-per-process fallback warnings afresh (tests/neural/conftest.py resets the
    random-weights ones), with no weights directory."""
    monkeypatch.setattr(pm, "_ANNOUNCED", set())
    monkeypatch.delenv(pm.WEIGHTS_ENV, raising=False)


def _mosaic(h: int = 32, w: int = 48) -> Frame:
    data = np.random.default_rng(0).uniform(0.05, 0.6, (h, w)).astype(np.float32)
    return Frame(data, Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="RGGB", black_level=(0, 0, 0, 0),
                                                          white_level=1.0))


def _assert_names_everything(msg: str, model: str) -> None:
    assert f"'{model}'" in msg
    spec = get_model_entry(model).weights
    assert spec.url in msg if spec.url else f"ispkit train {model}" in msg, "where the weights come from"
    assert spec.source in msg and spec.license in msg
    for option in OPTIONS:
        assert option in msg, option
    assert "\n" not in msg


def test_every_neural_stage_is_covered():
    assert {"learned_raw_to_rgb", "enhance", "super_resolution", "device_rendition", "reverse_isp"} <= set(NEURAL_STAGES)


@pytest.mark.parametrize("name", NEURAL_STAGES)
def test_every_neural_stage_refuses_without_weights_and_checks_paths_when_built(name, tmp_path):
    cls = STAGES[name]
    stage = cls()
    assert stage.random_weights is False and "random_weights" in cls.param_names()
    with pytest.raises(MissingWeightsError) as info:
        stage.weights_path()
    _assert_names_everything(str(info.value), stage.model)
    assert isinstance(info.value, WeightsError)
    with pytest.warns(RandomWeightsWarning, match=stage.model):
        assert cls(random_weights=True).weights_path() is None
    # a path that does not exist fails when the stage is built, from Python and from a config
    with pytest.raises(WeightsError, match=r"'/nope/x\.pth'.*does not exist"):
        cls(weights="/nope/x.pth")
    with pytest.raises(WeightsError, match="does not exist"):
        Pipeline([cls()]).set({f"{name}.weights": str(tmp_path / "missing.pth")})
    with pytest.raises(ParameterError, match="random_weights"):
        cls(random_weights="yes")
    # the opt-in round-trips through the config; the default stays out of it
    assert "random_weights" not in stage.to_config()["params"]
    cfg = cls(random_weights=True).to_config()
    assert cfg["params"]["random_weights"] is True and cls.from_params(cfg["params"]).random_weights is True


def test_learned_stage_refuses_to_run_then_runs_with_the_opt_in_said_once_and_recorded():
    frame = _mosaic()
    with pytest.raises(MissingWeightsError) as info:
        LearnedRawToRGB(model="dictionary_isp.k8")(frame)
    _assert_names_everything(str(info.value), "dictionary_isp.k8")
    assert "weights=None" in str(info.value)
    stage = LearnedRawToRGB(model="dictionary_isp.k8", random_weights=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = stage(frame)
        LearnedRawToRGB(model="dictionary_isp.k8", random_weights=True)(frame)
    said = [w for w in caught if issubclass(w.category, RandomWeightsWarning)]
    assert len(said) == 1 and "dictionary_isp.k8" in str(said[0].message)
    assert out.data.shape == (32, 48, 3) and out.domain is Domain.DISPLAY_RGB
    assert out.meta.extra["models"] == [{"stage": "learned_raw_to_rgb", "model": "dictionary_isp.k8",
                                         "weights": None, "sha256": None, "fallback": None,
                                         "random_weights": True}]


def test_a_real_checkpoint_is_recorded_as_trained(tmp_path):
    import torch

    path = tmp_path / "k8.pth"
    torch.save(create_model("dictionary_isp.k8").state_dict(), path)
    out = LearnedRawToRGB(model="dictionary_isp.k8", weights=str(path))(_mosaic())
    (rec,) = out.meta.extra["models"]
    assert rec["weights"] == str(path) and rec["random_weights"] is False and len(rec["sha256"]) == 64


def test_auto_without_a_file_and_without_fallback_refuses_naming_the_weights_directory(monkeypatch, tmp_path):
    monkeypatch.setenv(pm.WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(MissingWeightsError) as info:
        STAGES["enhance"](weights="auto")(Frame(np.zeros((16, 16, 3), np.float32), Domain.DISPLAY_RGB,
                                                CaptureMetadata()))
    msg = str(info.value)
    assert "weights='auto' found none" in msg and str(tmp_path) in msg and "fallback='skip'" in msg


def test_auto_with_a_fallback_still_falls_back_classically_not_randomly(monkeypatch, tmp_path):
    monkeypatch.setenv(pm.WEIGHTS_ENV, str(tmp_path))
    stage = IlluminantEstimation(method="fc4", weights="auto", fallback="gray_world")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = stage(_mosaic())
    assert [w.category for w in caught] == [FallbackWarning]
    (rec,) = out.meta.extra["models"]
    assert rec["fallback"].startswith("gray_world (no fc4.cwp weights") and rec["random_weights"] is False


@pytest.mark.parametrize("make", [
    lambda **kw: IlluminantEstimation(method="fc4", **kw),
    lambda **kw: WhiteBalance(method="fc4", **kw),
    lambda **kw: BayerDenoise(method="unet", sigma=0.01, **kw),
    lambda **kw: BayerDenoise(method="deepflexisp", **kw),
], ids=["illuminant_fc4", "white_balance_fc4", "bayer_denoise_unet", "bayer_denoise_deepflexisp"])
def test_classical_stages_with_learned_methods(make, tmp_path):
    frame = _mosaic()
    with pytest.raises(MissingWeightsError) as info:
        make()(frame)
    assert "random_weights=True" in str(info.value) and "--weights-dir" in str(info.value)
    with pytest.raises(WeightsError, match="does not exist"):
        make(weights=str(tmp_path / "nope.pth"))
    stage = make()
    with pytest.raises(WeightsError, match="does not exist"):
        Pipeline([stage]).set({f"{stage.type_name}.weights": "/nope.pth"})
    with pytest.warns(RandomWeightsWarning):
        out = make(random_weights=True)(frame)
    assert out.data.shape == frame.data.shape
    records = out.meta.extra.get("models")
    if records is not None:  # the estimation and denoise stages record their model
        assert records[-1]["random_weights"] is True and records[-1]["weights"] is None


def test_method_functions_refuse_too():
    from ispkit.neural.stages import denoise_bayer_unet, estimate_illuminant_fc4

    rgb = np.full((64, 64, 3), 0.3, np.float32)
    with pytest.raises(MissingWeightsError, match="fc4.cwp"):
        estimate_illuminant_fc4(rgb)
    with pytest.warns(RandomWeightsWarning):
        illum = estimate_illuminant_fc4(rgb, random_weights=True)
    assert illum.shape == (3,) and np.isclose(np.linalg.norm(illum), 1.0)
    with pytest.raises(MissingWeightsError, match="unet.raw"):
        denoise_bayer_unet(rgb[..., 0], "RGGB", 0.01)


def test_create_model_without_weights_is_still_allowed():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no refusal and no warning: this is how training starts
        net = create_model("dictionary_isp.k8")
    assert sum(p.numel() for p in net.parameters()) > 0


# -- the command line -----------------------------------------------------------
@pytest.fixture(scope="module")
def sample_dng(tmp_path_factory):
    cap = synthesize_capture(size=(64, 96), seed=5)
    m = cap.frame.meta
    path = tmp_path_factory.mktemp("rw") / "sample.dng"
    return write_dng(path, cap.frame.data.round().astype(np.uint16), m.cfa_pattern, black_level=m.black_level,
                     white_level=m.white_level, color_matrix1=m.color_matrix1, as_shot_neutral=1 / m.wb_gains)


@pytest.fixture(scope="module")
def learned_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("rwcfg") / "learned.toml"
    Pipeline([BlackLevel(), LearnedRawToRGB(model="dictionary_isp.k8")], name="learned").save(path)
    return path


def test_cli_render_refuses_without_weights_and_runs_with_the_flag(tmp_path, sample_dng, learned_config, capsys):
    out = tmp_path / "o.png"
    assert main(["render", str(sample_dng), "-o", str(out), "--config", str(learned_config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ispkit render: error: ")
    assert "dictionary_isp.k8" in err and "--allow-random-weights" in err and not out.exists()
    assert main(["render", str(sample_dng), "-o", str(out), "--config", str(learned_config),
                 "--allow-random-weights"]) == 0
    err = capsys.readouterr().err
    assert "random initial weights" in err and out.exists()


def test_cli_nonexistent_weights_fail_before_rendering(tmp_path, sample_dng, learned_config, capsys):
    for cmd in (["render", str(sample_dng), "-o", str(tmp_path / "o.png")],
                ["batch", str(sample_dng.parent), "-o", str(tmp_path / "batch")]):
        rc = main([*cmd, "--config", str(learned_config), "--set", "learned_raw_to_rgb.weights=/nope"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1, err
        assert "'/nope'" in err and "does not exist" in err
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "batch").exists()
    assert main(["render", str(sample_dng), "-o", str(tmp_path / "o.png"),
                 "--set", "white_balance.weights=/nope"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_batch_flag_becomes_overrides_every_worker_applies(tmp_path, sample_dng, learned_config, monkeypatch,
                                                                capsys):
    """The workers rebuild the pipeline from (preset, overrides), which the manifest also records."""
    import ispkit.batch
    from ispkit.render import build_pipeline

    seen = {}

    def fake_render_folder(src, dst, **kw):
        seen.update(kw)
        raise ispkit.errors.BatchError("stop here")

    monkeypatch.setattr(ispkit.batch, "render_folder", fake_render_folder)
    base = ["batch", str(sample_dng.parent), "-o", str(tmp_path / "b"), "--config", str(learned_config)]
    assert main(base) == 2 and not seen  # refused before any worker starts
    assert "--allow-random-weights" in capsys.readouterr().err
    assert main([*base, "--allow-random-weights", "--set", "black_level.clip=true"]) == 2
    assert seen["overrides"] == {"black_level.clip": True, "learned_raw_to_rgb.random_weights": True}
    pipe = build_pipeline(str(learned_config), overrides=seen["overrides"])
    assert pipe.stages[1].random_weights is True and pipe.stages[1].weights_path() is None


def test_render_api_refuses_too(sample_dng):
    with pytest.raises(MissingWeightsError):
        ispkit.render(sample_dng, Pipeline([BlackLevel(), LearnedRawToRGB(model="dictionary_isp.k8")]))
    json.dumps(LearnedRawToRGB(random_weights=True).to_config())  # plain data


def test_batch_gallery_labels_an_untrained_model():
    from ispkit._batch.gallery import _models

    rec = {"models": [{"stage": "enhance", "model": "deepflexisp.enhance_2023", "weights": None, "sha256": None,
                       "fallback": None, "random_weights": True}]}
    assert ">deepflexisp.enhance_2023 (random weights)<" in _models(rec)
    assert 'title="deepflexisp.enhance_2023: random initial weights"' in _models(rec)


def test_cli_classical_stage_with_a_learned_method_refuses_once_before_any_file(tmp_path, sample_dng, capsys):
    override = "white_balance.method=fc4"
    for cmd in (["render", str(sample_dng), "-o", str(tmp_path / "o.png")],
                ["batch", str(sample_dng.parent), "-o", str(tmp_path / "batch")]):
        rc = main([*cmd, "--set", override])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1, err
        assert "fc4" in err and "--allow-random-weights" in err and "'white_balance'" in err
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "batch").exists()
    assert main(["render", str(sample_dng), "-o", str(tmp_path / "o.png"), "--set", override,
                 "--allow-random-weights"]) == 0
    assert (tmp_path / "o.png").exists()
