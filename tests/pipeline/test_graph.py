"""Pipeline graph: validation, editing, running, intermediates and timings."""

from dataclasses import dataclass

import numpy as np
import pytest

from ispkit.errors import ConfigError, DomainError, ISPError, MissingMetadataError, UnknownNameError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.pipeline import Pipeline, Stage, StageSpec


@dataclass(frozen=True)
class Scale(Stage):
    type_name = "test_scale"
    factor: float = 2.0

    @property
    def spec(self):
        return StageSpec(in_domains=(Domain.RAW_MOSAIC, Domain.CAMERA_RGB))

    def process(self, frame):
        return frame.replace(data=frame.data * np.float32(self.factor))


@dataclass(frozen=True)
class ToRGB(Stage):
    type_name = "test_to_rgb"

    @property
    def spec(self):
        return StageSpec(in_domains=(Domain.RAW_MOSAIC,), out_domain=Domain.CAMERA_RGB)

    def process(self, frame):
        return frame.replace(data=np.repeat(frame.data[..., None], 3, axis=2), domain=Domain.CAMERA_RGB)


@dataclass(frozen=True)
class Estimate(Stage):
    type_name = "test_estimate"

    @property
    def spec(self):
        return StageSpec(in_domains=(Domain.CAMERA_RGB,), provides=("illuminant_rgb",))

    def process(self, frame):
        return frame.replace(illuminant_rgb=frame.data.reshape(-1, 3).mean(0))


@dataclass(frozen=True)
class UseIlluminant(Stage):
    type_name = "test_use"

    @property
    def spec(self):
        return StageSpec(in_domains=(Domain.CAMERA_RGB,), requires=("illuminant_rgb",))

    def process(self, frame):
        return frame.replace(data=frame.data / frame.meta.illuminant_rgb.astype(np.float32))


@dataclass(frozen=True)
class Boom(Stage):
    type_name = "test_boom"

    @property
    def spec(self):
        return StageSpec(in_domains=(Domain.CAMERA_RGB,))

    def process(self, frame):
        raise ZeroDivisionError("kaboom")


def mosaic_frame(value=1.0):
    return Frame(np.full((4, 6), value, np.float32), Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="RGGB"))


def test_run_and_intermediates():
    pipe = Pipeline([Scale(3.0), ToRGB(), Scale(0.5), Estimate(), UseIlluminant()])
    assert pipe.names == ["test_scale", "test_to_rgb", "test_scale_2", "test_estimate", "test_use"]
    frame = mosaic_frame(2.0)
    res = pipe.run(frame, keep_intermediates=True)
    assert list(res.intermediates) == ["input"] + pipe.names
    np.testing.assert_allclose(res.intermediates["test_scale_2"].data, 3.0)
    np.testing.assert_allclose(res.output.data, 1.0)
    assert set(res.timings) == set(pipe.names) and all(t >= 0 for t in res.timings.values())
    np.testing.assert_array_equal(frame.data, 2.0)  # input untouched
    np.testing.assert_allclose(pipe(frame).data, res.output.data)


def test_hooks_see_every_stage():
    seen = []
    pipe = Pipeline([Scale(), ToRGB()])
    pipe.run(mosaic_frame(), hooks=[lambda n, s, f, t: seen.append((n, f.domain))])
    assert seen == [("test_scale", Domain.RAW_MOSAIC), ("test_to_rgb", Domain.CAMERA_RGB)]


def test_wrong_order_names_both_stages_and_domains():
    with pytest.raises(DomainError) as e:
        Pipeline([ToRGB(), ("again", ToRGB())])
    msg = str(e.value)
    assert "'test_to_rgb'" in msg and "'again'" in msg and "CAMERA_RGB" in msg and "RAW_MOSAIC" in msg


def test_input_domain_is_checked():
    with pytest.raises(DomainError, match="the input produces CAMERA_RGB"):
        Pipeline([ToRGB()], input_domain=Domain.CAMERA_RGB)


def test_stage_only_metadata_must_be_provided_upstream():
    with pytest.raises(MissingMetadataError, match="'test_use'.*illuminant_rgb"):
        Pipeline([ToRGB(), UseIlluminant()])
    Pipeline([ToRGB(), UseIlluminant()], input_provides=("illuminant_rgb",))


def test_stage_rejects_wrong_domain_at_run_time():
    with pytest.raises(DomainError, match="takes CAMERA_RGB"):
        Estimate()(mosaic_frame())


def test_editing_returns_new_pipelines():
    pipe = Pipeline([Scale(2.0), ToRGB(), Estimate(), UseIlluminant()])
    p2 = pipe.replace("test_scale", Scale(5.0))
    assert pipe["test_scale"].factor == 2.0 and p2["test_scale"].factor == 5.0
    p3 = pipe.insert_before("test_to_rgb", Scale(0.1), new_name="pre")
    assert p3.names[:3] == ["test_scale", "pre", "test_to_rgb"]
    p4 = pipe.insert_after("test_to_rgb", Scale(0.1))
    assert p4.names[2] == "test_scale_2"
    with pytest.raises(MissingMetadataError):
        pipe.remove("test_estimate")
    with pytest.raises(DomainError):
        Pipeline(pipe.nodes, input_domain=Domain.RAW_MOSAIC).remove("test_to_rgb")
    with pytest.raises(UnknownNameError, match="test_to_rgb"):
        pipe.remove("nope")
    p5 = pipe.set({"test_scale.factor": 4})
    assert p5["test_scale"].factor == 4.0 and isinstance(p5["test_scale"].factor, float)
    assert pipe.set(test_scale__factor=3.0)["test_scale"].factor == 3.0
    with pytest.raises(ConfigError, match="unknown parameter.*'bogus'.*factor"):
        pipe.set({"test_scale.bogus": 1})
    with pytest.raises(ConfigError, match="stage.param"):
        pipe.set({"factor": 1})


def test_duplicate_names_rejected():
    with pytest.raises(ConfigError, match="unique"):
        Pipeline([("a", Scale()), ("a", Scale())])


def test_foreign_exceptions_name_the_stage():
    pipe = Pipeline([ToRGB(), ("explode", Boom())])
    with pytest.raises(ISPError, match="'explode'.*ZeroDivisionError: kaboom"):
        pipe(mosaic_frame())


def test_non_frame_input_is_a_clear_error():
    with pytest.raises(DomainError, match="Frame"):
        Scale()(np.zeros((4, 4)))
