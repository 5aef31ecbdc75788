"""Reverse ISP networks: display sRGB → demosaiced linear camera RAW.

:class:`ReverseISPNet` follows the structure of Kim, Jiang & Gu's AIM 2022
entry: the network maps sRGB to *demosaiced* RAW (three linear camera
channels, mosaiced afterwards by the wrapper), optionally with

* **overexposure mask fusion** — an overexposure mask computed from the
  sRGB input blends a normal-exposure branch U-Net(NOE) and an
  over-exposed branch U-Net(OE): ``(1 − m)·normal + m·over``. Trained end
  to end, each branch only receives gradient where its weight is nonzero,
  so the OE branch specialises in the clipped regions;
* **multi-step refinement** — a second U-Net sees the sRGB input, the first
  estimate and the mask and adds a correction to that estimate.

Every branch starts from a shared classical prior (the sRGB EOTF followed by
a learned 3×3 colour matrix, initialised to the identity) and predicts a
residual on it through a zero-initialised head, so an untrained network
returns linearised sRGB and short CPU trainings converge quickly.

References
----------
J. Kim, J. Jiang, J. Gu, "Overexposure Mask Fusion: Generalizable Reverse
ISP Multi-Step Refinement", ECCV Workshops (AIM 2022), arXiv:2210.11511.
M. V. Conde, R. Timofte et al., "Reversed Image Signal Processing and RAW
Reconstruction. AIM 2022 Challenge Report", ECCV Workshops 2022.
O. Ronneberger, P. Fischer, T. Brox, "U-Net", MICCAI 2015.
IEC 61966-2-1:1999 (the sRGB transfer function).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ParameterError
from .blocks import check_input
from .unet import UNet

__all__ = ["ReverseISPNet", "overexposure_mask", "fuse_branches", "srgb_to_linear"]


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """Apply the sRGB EOTF (IEC 61966-2-1) to display values clipped to [0, 1].

    Notes
    -----
    Any shape, float; the output is scene-linear in [0, 1].
    """
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp_min(1e-8) ** 2.4)


def overexposure_mask(x: torch.Tensor, threshold: float = 0.98, width: float = 0.08,
                      dilate: int = 2) -> torch.Tensor:
    """Return the soft overexposure mask of display RGB: 1 where any channel ≥ ``threshold``.

    Parameters
    ----------
    x : N×3×H×W display sRGB in [0, 1].
    threshold : channel value from which a pixel counts as clipped (mask 1).
    width : the mask ramps linearly from 0 at ``threshold − width`` to 1 at ``threshold``
        (0 gives a hard step).
    dilate : grow the mask by this many pixels (max filter), so the over-exposed branch
        also handles the rim of a clipped region, where demosaicing and colour
        conversion mixed clipped and unclipped values.

    Returns
    -------
    N×1×H×W mask in [0, 1] (no gradient flows into the input).

    References
    ----------
    Kim, Jiang & Gu, AIM 2022 (the overexposure mask of the sRGB input).
    """
    peak = x.detach().amax(dim=1, keepdim=True)
    if width > 0:
        m = ((peak - (threshold - width)) / width).clamp(0.0, 1.0)
    else:
        m = (peak >= threshold).to(x.dtype)
    if dilate > 0:
        m = F.max_pool2d(m, 2 * dilate + 1, stride=1, padding=dilate)
    return m


def fuse_branches(normal: torch.Tensor, over: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Blend the two branch outputs: ``(1 − mask)·normal + mask·over``.

    Notes
    -----
    ``normal``, ``over``: N×C×H×W; ``mask``: N×1×H×W in [0, 1]. Mask 0 gives
    the normal branch exactly, mask 1 the over-exposed branch.
    """
    return normal + mask * (over - normal)


def _residual_unet(in_channels: int, out_channels: int, base: int, depth: int) -> UNet:
    net = UNet(in_channels=in_channels, out_channels=out_channels, base=base, depth=depth, residual=False)
    nn.init.zeros_(net.head.weight)
    nn.init.zeros_(net.head.bias)
    return net


class ReverseISPNet(nn.Module):
    """sRGB → demosaiced linear camera RAW, with optional mask fusion and refinement.

    Parameters
    ----------
    base, depth : width at full resolution and number of downsamplings of every U-Net.
    fusion : two branches (normal, over-exposed) blended by :func:`overexposure_mask`;
        False uses one U-Net.
    refine : add the second (refinement) step.
    out_channels : 3 (demosaiced R, G, B camera planes).
    mask_threshold, mask_width, mask_dilate : see :func:`overexposure_mask`.

    Notes
    -----
    Input N×3×H×W display sRGB in [0, 1] (H, W multiples of ``2**depth``);
    output N×3×H×W linear camera RGB of the camera the weights were trained
    on (black 0, white 1; not clipped — the wrapper clips to the sensor's
    saturation when mosaicing). :meth:`forward_steps` also returns the
    first-step estimate and the mask (for deep supervision and inspection).
    """

    def __init__(self, base: int = 16, depth: int = 3, *, fusion: bool = False, refine: bool = False,
                 out_channels: int = 3, mask_threshold: float = 0.98, mask_width: float = 0.08,
                 mask_dilate: int = 2) -> None:
        super().__init__()
        if out_channels != 3:
            raise ParameterError(f"ReverseISPNet: out_channels must be 3 (demosaiced R, G, B), got {out_channels}")
        if not 0.0 < mask_threshold <= 1.0 or not 0.0 <= mask_width < mask_threshold or mask_dilate < 0:
            raise ParameterError(
                "ReverseISPNet: expected 0 < mask_threshold <= 1, 0 <= mask_width < mask_threshold and "
                f"mask_dilate >= 0, got {mask_threshold!r}, {mask_width!r}, {mask_dilate!r}")
        self.depth, self.fusion, self.refine = depth, bool(fusion), bool(refine)
        self.mask_threshold, self.mask_width, self.mask_dilate = float(mask_threshold), float(mask_width), int(mask_dilate)
        self.color = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.color.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.color.bias.zero_()
        self.normal = _residual_unet(3, 3, base, depth)
        self.over = _residual_unet(4, 3, base, depth) if self.fusion else None
        self.refiner = _residual_unet(7 if self.fusion else 6, 3, base, depth) if self.refine else None

    @property
    def size_multiple(self) -> int:
        return 2 ** self.depth

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """The overexposure mask of ``x`` with this network's settings (N×1×H×W)."""
        return overexposure_mask(x, self.mask_threshold, self.mask_width, self.mask_dilate)

    def forward_steps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``{"raw": final, "first": first-step estimate, "mask": mask or None}``."""
        check_input(x, 3, self.size_multiple, "ReverseISPNet")
        prior = self.color(srgb_to_linear(x))
        first = prior + self.normal(x)
        m = None
        if self.fusion:
            m = self.mask(x)
            over = prior + self.over(torch.cat([x, m], dim=1))
            first = fuse_branches(first, over, m)
        final = first
        if self.refiner is not None:
            parts = [x, first] if m is None else [x, first, m]
            final = first + self.refiner(torch.cat(parts, dim=1))
        return {"raw": final, "first": first, "mask": m}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_steps(x)["raw"]
