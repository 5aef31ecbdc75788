"""The contract every registered stage keeps (design.md §7).

For each stage type: builds from defaults, round-trips through its config
(and TOML), pickles, runs on a tiny frame of each domain it accepts, returns
float32 in the declared domain, and leaves its input unchanged.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import ispkit
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.pipeline import Pipeline, get_stage_class, stage_names
from ispkit.pipeline import loads_config, pipeline_from_config

H, W = 32, 48


def _meta() -> CaptureMetadata:
    xyz_to_cam = np.array([[0.9, -0.29, -0.07], [-0.45, 1.24, 0.23], [-0.09, 0.19, 0.71]])
    return CaptureMetadata(
        black_level=np.zeros(4), white_level=1.0, cfa_pattern="RGGB", wb_gains=[1.9, 1.0, 1.4],
        cam_to_xyz=np.linalg.inv(xyz_to_cam), cam_to_srgb=np.eye(3), color_matrix1=xyz_to_cam,
        calibration_illuminant1=21, noise_profile=((1e-3, 1e-5),) * 3, iso=100, exposure_time=0.01,
        make="ispkit", model="contract", illuminant_rgb=[0.5, 1.0, 0.7], white_point=[1.0, 1.0, 1.0],
        color_space="sRGB", source="contract-test",
    )


def _frame(domain: Domain) -> Frame:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:H, 0:W] / np.array([H, W])[:, None, None]
    base = 0.15 + 0.6 * (0.5 + 0.5 * np.sin(6 * xx) * np.cos(4 * yy))
    if domain is Domain.RAW_MOSAIC:
        data = base + 0.01 * rng.standard_normal((H, W))
    elif domain is Domain.RAW_PACKED:
        data = np.stack([base[::2, ::2]] * 4, axis=-1) * np.array([0.5, 1.0, 1.0, 0.7])
    else:
        data = np.stack([base, base[::-1], base[:, ::-1]], axis=-1) + 0.01 * rng.standard_normal((H, W, 3))
    return Frame(np.clip(data, 0.01, 0.99).astype(np.float32), domain, _meta())


STAGE_NAMES = stage_names()


def test_registry_is_populated():
    # the foundation stages of the default preset must be registered
    for name in ("black_level", "white_balance", "demosaic", "color_matrix", "gamma"):
        assert name in STAGE_NAMES
    assert ispkit.list_stages() == STAGE_NAMES


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_stage_contract(name):
    cls = get_stage_class(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stage = cls()
    assert stage.type_name == name
    # config round trip, directly and through TOML text
    cfg = stage.to_config()
    assert cfg["type"] == name and cfg["version"] == cls.version
    assert cls.from_params(cfg["params"]) == stage
    toml = Pipeline([stage]).to_toml()
    assert pipeline_from_config(loads_config(toml)).stages[0] == stage
    # pickling keeps the parameters
    assert pickle.loads(pickle.dumps(stage)) == stage
    spec = stage.spec
    assert spec.in_domains, f"{name} accepts no domain"
    if "random_weights" in cls.param_names() and stage.random_weights is False:
        # a learned stage has no weights by default and refuses to run; the contract run opts in explicitly
        stage = cls(random_weights=True)
    for domain in spec.in_domains:
        frame = _frame(domain)
        before = frame.data.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = stage(frame)
        assert isinstance(out, Frame)
        assert out.domain is spec.output_for(domain)
        assert out.data.dtype == np.float32
        assert np.all(np.isfinite(out.data)), f"{name} produced non-finite values on {domain}"
        np.testing.assert_array_equal(frame.data, before)
        for key in spec.provides:
            assert out.meta.has(key), f"{name} declares it provides {key!r} but did not set it"
