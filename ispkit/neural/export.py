"""Export a registered model (or a neural stage's network) to ONNX.

Uses torch's TorchScript-based exporter (``dynamo=False``), which needs no
extra package, with dynamic batch, height and width axes, in float32 or
float16. :func:`quantize_onnx_int8` turns an exported float32 graph into a
statically quantised int8 one (QDQ format) with onnxruntime's quantisation
tools (the optional ``onnx`` extra), calibrated on inputs the caller draws
from the training data.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

import torch
from torch import nn

from ..errors import ParameterError
from .registry import create_model, get_model_entry
from .weights import InputContract

__all__ = ["export_onnx", "default_input_shape", "quantize_onnx_int8", "EXPORT_DTYPES"]

#: Parameter/input dtypes :func:`export_onnx` writes.
EXPORT_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def default_input_shape(contract: InputContract) -> tuple[int, int, int, int]:
    """A modest 1×C×H×W example input honouring the contract's size multiple."""
    side = max(64, 4 * contract.size_multiple)
    side = int(math.ceil(side / contract.size_multiple) * contract.size_multiple)
    if contract.scale == 0.0:  # global estimators (FC4) want some context
        side = max(side, 128)
    return (1, contract.in_channels, side, side)


def export_onnx(name_or_stage: "str | nn.Module | object", path: str | Path, *,
                input_shape: tuple[int, int, int, int] | None = None, opset: int = 17,
                weights: str | Path | Mapping[str, torch.Tensor] | None = None,
                dtype: str = "float32") -> Path:
    """Write a model as an ONNX file and return its path.

    Parameters
    ----------
    name_or_stage : a registered model name (``"fc4.cwp"``, ``"unet.raw"``,
        ``"mwispnet.aim2020"`` …), a neural stage (its cached network is
        exported, weights included), or an ``nn.Module``.
    path : the ``.onnx`` file to write.
    input_shape : the N×C×H×W example input (default from the model's
        InputContract); N, H and W stay dynamic in the exported graph.
    opset : the ONNX opset version.
    weights : a checkpoint for a model given by name (None exports random weights).
    dtype : ``"float32"`` (default) or ``"float16"``: the graph's weights,
        input and output (FP16 for mobile GPUs; onnxruntime's CPU provider
        runs it too).

    Notes
    -----
    The exported graph takes float32 NCHW input exactly as the network does
    (already packed/normalised); wrapper logic (packing, tiling) is not exported.
    Batch, height and width are dynamic; a graph whose layers are built from
    the input's size falls back to the fixed ``input_shape`` with a RuntimeWarning,
    and a model with ``onnx_dynamic = False`` (MetaISP: ``net(raw)`` with its
    stand-in inputs, device 0) is exported for ``input_shape`` only.
    """
    contract: InputContract | None = None
    if isinstance(name_or_stage, str):
        model = create_model(name_or_stage, weights=weights, device="cpu")
        contract = get_model_entry(name_or_stage).weights.contract
    elif isinstance(name_or_stage, nn.Module):
        model = name_or_stage
    elif hasattr(name_or_stage, "network") and hasattr(name_or_stage, "contract"):
        model, _dev = name_or_stage.network()  # type: ignore[attr-defined]
        contract = name_or_stage.contract  # type: ignore[attr-defined]
    else:
        raise ParameterError(
            f"export_onnx: expected a model name, a neural stage or an nn.Module, got {type(name_or_stage).__name__}"
        )
    if input_shape is None:
        if contract is None:
            raise ParameterError("export_onnx: give input_shape when exporting a bare nn.Module")
        input_shape = default_input_shape(contract)
    if len(input_shape) != 4 or any(int(s) < 1 for s in input_shape):
        raise ParameterError(f"export_onnx: input_shape must be N×C×H×W positive ints, got {input_shape!r}")
    if dtype not in EXPORT_DTYPES:
        raise ParameterError(f"export_onnx: dtype must be one of {', '.join(EXPORT_DTYPES)}, got {dtype!r}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    dt = EXPORT_DTYPES[dtype]
    if dt != torch.float32 and isinstance(name_or_stage, nn.Module):
        import copy

        model = copy.deepcopy(model)  # never change the caller's module to float16
    model = model.to("cpu", memory_format=torch.contiguous_format).to(dt).eval()
    example = torch.rand(*[int(s) for s in input_shape]).to(dt)
    dynamic = {"input": {0: "batch", 2: "height", 3: "width"},
               "output": {0: "batch"} if (contract is not None and contract.scale == 0.0)
               else {0: "batch", 2: "out_height", 3: "out_width"}}
    if getattr(model, "onnx_dynamic", True) is False:  # built from the example's size (MetaISP's grids)
        _export(_OneInput(model), example, out, opset, None)  # defaulted arguments stay constants
        return out
    try:
        _export(model, example, out, opset, dynamic)
    except Exception as exc:  # the TorchScript exporter raises several kinds for shape-dependent graphs
        # some graphs (e.g. kernels built from x.size()) only export with fixed sizes
        warnings.warn(
            f"export_onnx: the graph does not export with dynamic height/width ({type(exc).__name__}); "
            f"writing it for the fixed input shape {tuple(example.shape)} instead",
            RuntimeWarning, stacklevel=2,
        )
        _export(model, example, out, opset, None)
    return out


class _OneInput(nn.Module):
    """Call a model with its first argument only (its other arguments keep their defaults)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _export(model: nn.Module, example: torch.Tensor, out: Path, opset: int,
            dynamic_axes: dict | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript exporter deprecation notices
        torch.onnx.export(
            model, (example,), str(out), dynamo=False, opset_version=opset,
            input_names=["input"], output_names=["output"], dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )


class _ArrayReader:
    """An onnxruntime CalibrationDataReader over N×C×H×W float32 arrays (one batch per call)."""

    def __init__(self, name: str, batches: Iterable[np.ndarray]) -> None:
        self._name = name
        self._it = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        if batch is None:
            return None
        a = np.ascontiguousarray(batch, dtype=np.float32)
        if a.ndim != 4:
            raise ParameterError(f"quantize_onnx_int8: calibration batches must be N×C×H×W arrays, got shape {a.shape}")
        return {self._name: a}


def quantize_onnx_int8(src: str | Path, dst: str | Path, calibration: Iterable[np.ndarray], *,
                       per_channel: bool = True, method: str = "minmax",
                       exclude_nodes: tuple[str, ...] = ()) -> Path:
    """Quantise a float32 ONNX graph to int8 (static, QDQ format) and return the new file's path.

    Parameters
    ----------
    src : a float32 graph written by :func:`export_onnx`.
    dst : the ``.onnx`` file to write.
    calibration : N×C×H×W float32 inputs drawn from the training data (a few
        dozen crops is typical); their activation ranges fix the scales.
    per_channel : one weight scale per output channel (recommended for convs).
    method : ``"minmax"``, ``"entropy"`` or ``"percentile"`` calibration.
    exclude_nodes : node names left in float (e.g. the last convolution).

    Notes
    -----
    Activations are uint8 and weights int8 (onnxruntime's default QDQ
    pairing, fast on x86 and ARM); the graph keeps dynamic input sizes.
    Needs the optional ``onnx`` extra (``onnx``, ``onnxruntime``).

    References
    ----------
    onnxruntime documentation, "Quantize ONNX models" (static quantisation,
    QDQ format, CalibrationDataReader).
    """
    try:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:  # pragma: no cover - the extra is installed in the test environment
        raise ParameterError("quantize_onnx_int8 needs onnxruntime: pip install 'ispkit[onnx]'") from exc
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise ParameterError(f"quantize_onnx_int8: method must be one of {', '.join(methods)}, got {method!r}")
    import itertools

    batches = iter(calibration)
    first = next(batches, None)
    if first is None:
        raise ParameterError("quantize_onnx_int8: the calibration iterable gave no batch; pass a few "
                             "N×C×H×W crops of the training inputs")
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ParameterError(f"quantize_onnx_int8: no ONNX file at {str(src)!r}; export it with export_onnx first")
    dst.parent.mkdir(parents=True, exist_ok=True)
    prepared = dst.with_name(dst.stem + ".prep.onnx")
    quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
    import onnx

    name = onnx.load(str(prepared)).graph.input[0].name
    reader = _ArrayReader(name, itertools.chain([first], batches))
    try:
        quantize_static(str(prepared), str(dst), reader, quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=per_channel, calibrate_method=methods[method],
                        nodes_to_exclude=list(exclude_nodes))
    finally:
        prepared.unlink(missing_ok=True)
    return dst
