"""Held-out colour accuracy of a spectral camera profile against 3×3 matrices (issue 12 §4).

Run: ``python benchmarks/bench_profile.py [camera]`` (default ``"Nikon 5100 (NPL)"``).
Builds an A/D65 DCP profile (ForwardMatrix + 90×30 HueSatMap) from the
camera's measured sensitivities and colour-science's training reflectances
with every ColorChecker-like spectrum removed, then prints the mean CIEDE2000
on the 24 ColorChecker patches it never saw, under five illuminants, for:

* ``profile``      the DCP as ispkit renders it (white found by the ColorMatrix
                   iteration, ForwardMatrix + HueSatMap mixed by inverse CCT);
* ``FM only``      the same profile without its HueSatMap;
* ``DCP at light`` a single-illuminant profile (FM + HueSatMap) built for the
                   test illuminant (``ispkit profile --illuminants F2``): the
                   same knowledge of the light as the per-illuminant matrices;
* ``best 3×3``     a white-preserving 3×3 fitted (ΔE2000) at the test illuminant
                   itself on the same training set — the best a per-illuminant
                   matrix (LibRaw / RawTherapee / darktable's model) can do;
* ``XYZ-LS 3×3``   the same fitted by XYZ least squares (how DNG ColorMatrices
                   and ispkit's synthetic DNG matrix are made);
* ``matrix_idt``   colour-science's rawtoaces IDT at the test illuminant,
                   same training set, Bradford adaptation.

All from colour-science data; no downloads. Fitting time is printed too.
"""

from __future__ import annotations

import sys
import time

from ispkit import profile as P


def main(camera: str = "Nikon 5100 (NPL)") -> None:
    t = time.perf_counter()
    fit = P.build_spectral_profile(camera)
    print(f"{camera}: profile fitted in {time.perf_counter() - t:.1f} s on {fit.training}; training mean ΔE2000 "
          + ", ".join(f"{k} {v:.2f}" for k, v in fit.training_delta_e.items()))
    table = P.profile_comparison(camera, fit=fit, xyz_baseline=True)
    cols = ("profile", "profile_max", "profile_matrix", "profile_single", "best_3x3", "xyz_3x3", "matrix_idt")
    heads = ("A/D65 DCP", "(max)", "FM only", "DCP at light", "best 3×3", "XYZ-LS 3×3", "matrix_idt")
    print("mean ΔE2000, 24 ColorChecker patches (held out)")
    print(f"{'illuminant':<11s}" + "".join(f"{h:>13s}" for h in heads))
    for ill, row in table.items():
        print(f"{ill:<11s}" + "".join(f"{row[c]:13.3f}" for c in cols))


if __name__ == "__main__":
    main(*sys.argv[1:2])
