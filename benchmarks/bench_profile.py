"""Held-out colour accuracy of spectral camera profiles against 3×3 matrices (issue 12 §4).

Run: ``python benchmarks/bench_profile.py [camera]`` (default ``"Nikon 5100 (NPL)"``).
Builds, from the camera's measured sensitivities and colour-science's training
reflectances with every ColorChecker-like spectrum removed,

* the default profile: DNG 1.6 three-illuminant (A, D55, F = EXIF
  "Fluorescent"), ForwardMatrices + 90×30 HueSatMaps fitted jointly over
  :data:`ispkit.profile.TRAINING_ILLUMINANTS` (a broad standard set of lights
  that includes the CIE F and LED series, so also F2 and LED-B3 themselves);
* the same with F2 and LED-B3 left out of the training lights (``F2/LED unseen``);
* the A/D65 dual-illuminant profile fitted at each calibration light;

then prints the mean CIEDE2000 on the 24 ColorChecker patches none of them saw,
under five illuminants, with

* ``FM only``      the default profile without its HueSatMaps;
* ``best 3×3``     a white-preserving 3×3 fitted (ΔE2000) at the test illuminant
                   itself on the same training reflectances — the best a
                   per-illuminant matrix (LibRaw / RawTherapee / darktable's
                   model) can do;
* ``XYZ-LS 3×3``   the same fitted by XYZ least squares;
* ``matrix_idt``   colour-science's rawtoaces IDT at the test illuminant.

All from colour-science data; no downloads. Fitting times are printed too.
"""

from __future__ import annotations

import sys
import time

from ispkit import profile as P


def _timed(label: str, **kw):
    t = time.perf_counter()
    fit = P.build_spectral_profile(**kw)
    print(f"{label}: fitted in {time.perf_counter() - t:.1f} s on {fit.training}; training mean ΔE2000 "
          + ", ".join(f"{k} {v:.2f}" for k, v in fit.training_delta_e.items()), flush=True)
    return fit


def main(camera: str = "Nikon 5100 (NPL)") -> None:
    fit = _timed("A/D55/F profile", camera=camera)
    unseen = _timed("  same, F2 and LED-B3 not among the training lights", camera=camera, exclude=("FL2", "LED-B3"))
    dual = _timed("A/D65 dual profile", camera=camera, illuminants=("A", "D65"))
    table = P.profile_comparison(camera, fit=fit, xyz_baseline=True, single=False)
    other = {name: P.evaluate_profile(f, camera) for name, f in (("unseen", unseen), ("dual", dual))}
    cols = ("profile", "profile_max", "unseen", "dual", "profile_matrix", "best_3x3", "xyz_3x3", "matrix_idt")
    heads = ("A/D55/F DCP", "(max)", "F2/LED unseen", "A/D65 DCP", "FM only", "best 3×3", "XYZ-LS 3×3", "matrix_idt")
    print("mean ΔE2000, 24 ColorChecker patches (held out)")
    print(f"{'illuminant':<11s}" + "".join(f"{h:>14s}" for h in heads))
    for ill, row in table.items():
        row = dict(row, unseen=float(other["unseen"][ill].mean()), dual=float(other["dual"][ill].mean()))
        print(f"{ill:<11s}" + "".join(f"{row[c]:14.3f}" for c in cols))


if __name__ == "__main__":
    main(*sys.argv[1:2])
