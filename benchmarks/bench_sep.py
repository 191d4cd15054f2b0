"""Benchmark v2, real data: every inverse on spharapy's median-nerve SEP.

Right median nerve stimulation: the N20 and P25 should come from the left
(contralateral) S1 hand area. Each method runs on the template forward of the
fitted cap on a 10-40 ms window; each estimate is scored at the GFP peaks of
the N20 and P25 (see mne_brainforge.evaluation.real_data).

Run: .venv/bin/python benchmarks/bench_sep.py [--out docs/benchmarks]
"""

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mne  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from mne_brainforge.evaluation.real_data import (  # noqa: E402
    HAND_AREA_LH,
    distance_to_region,
    load_spharapy_sep,
    score_sep,
)
from mne_brainforge.head import (  # noqa: E402
    make_fsaverage_bem_solution,
    make_fsaverage_forward,
    read_fsaverage_source_space,
)
from mne_brainforge.head.template import fsaverage_trans_path  # noqa: E402
from mne_brainforge.inverse.classical import GammaMap, MixedNorm, MNEInverse  # noqa: E402

METHODS = {
    **{m: MNEInverse(m) for m in ("MNE", "dSPM", "sLORETA", "eLORETA", "LCMV")},
    "MxNE (alpha 30%, 10 iter)": MixedNorm(alpha=30.0, n_mxne_iter=10),
    "gamma-MAP": GammaMap(),
}


def main(out_dir):
    t0 = time.perf_counter()
    evoked, noise_cov, meta = load_spharapy_sep(verbose=False)
    lat = {c: meta["latencies"][c] for c in ("N20", "P25")}
    hemi = meta["hemi_expected"]
    fwd = make_fsaverage_forward(evoked.info, verbose=False)
    src = read_fsaverage_source_space(verbose=False)
    window = evoked.copy().crop(0.010, 0.040)
    rows = []
    for name, method in tqdm(METHODS.items(), desc="inverses"):
        tm = time.perf_counter()
        stc = method(window, fwd, noise_cov)
        sec = time.perf_counter() - tm
        for comp, t in lat.items():
            rows.append(
                {
                    "method": name,
                    "component": comp,
                    "latency_ms": round(t * 1e3, 1),
                    **score_sep(stc, latency=t, hemi_expected=hemi, src=src),
                    "seconds": round(sec, 1),
                }
            )
    bem = make_fsaverage_bem_solution(verbose=False)
    trans = mne.read_trans(fsaverage_trans_path())
    inner = bem["surfs"][0]  # the innermost (inner skull) surface, MRI coordinates
    for comp, t in lat.items():
        ev = evoked.copy().crop(t, t)
        dip, _ = mne.fit_dipole(ev, noise_cov, bem, trans=trans, verbose=False)
        pos = mne.transforms.apply_trans(trans, dip.pos[0])
        depth = float(np.min(np.linalg.norm(inner["rr"] - pos, axis=1)))
        rows.append(
            {
                "method": "dipole (BEM)",
                "component": comp,
                "latency_ms": round(t * 1e3, 1),
                "peak_hemi": "lh" if pos[0] < 0 else "rh",
                "peak_pos_mm": [round(float(x), 1) for x in pos * 1e3],
                "in_region": distance_to_region(pos, hemi) == 0,
                "distance_mm": distance_to_region(pos, hemi),
                "energy_region": None,
                "energy_hemi": None,
                "gof": round(float(dip.gof[0]), 1),
                "depth_mm": round(depth * 1e3, 1),
            }
        )
    report = {
        "data": "spharapy 1.3 eeg_256_channel_study (right median nerve SEP)",
        "hemi_expected": hemi,
        "latencies_ms": {c: round(v * 1e3, 2) for c, v in meta["latencies"].items()},
        "montage_fit": {
            k: meta["fit"][k] for k in ("rms_mm", "max_mm", "scale", "runner_up_rms_mm")
        },
        "region": {
            "centre_mm": (HAND_AREA_LH * 1e3).tolist(),
            "radius_mm": 25,
            "definition": "ball around the S1 hand area (MNI305 ~ fsaverage RAS)",
        },
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out_dir = Path(out_dir)
    (out_dir / "sep.json").write_text(json.dumps(report, indent=1))
    plot(rows, src, out_dir / "sep.png")
    print(json.dumps(report["latencies_ms"]), json.dumps(report["montage_fit"]))
    for r in rows:
        print(
            f"{r['method']:28s} {r['component']} {r['peak_hemi']} "
            f"{r['distance_mm']:6.1f} mm  region E {r['energy_region']}"
        )


def plot(rows, src, fname):
    """Peaks on an axial (top) projection of the white-matter sources."""
    rr = np.concatenate([s["rr"][s["vertno"]] for s in src]) * 1e3
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.5), sharey=True)
    for ax, comp in zip(axes, ("N20", "P25")):
        ax.scatter(rr[::7, 0], rr[::7, 1], s=1, c="0.85")
        ax.add_patch(plt.Circle(HAND_AREA_LH[:2] * 1e3, 25, fill=False, ls="--"))
        for i, r in enumerate(x for x in rows if x["component"] == comp):
            x, y, _ = r["peak_pos_mm"]
            ax.scatter(x, y, s=60, marker="os^vD<>*"[i % 8], label=r["method"])
        ax.set(
            title=f"{comp} peaks (top view)", xlabel="x (mm, left <0)", aspect="equal"
        )
    axes[0].set_ylabel("y (mm, anterior >0)")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(fname, dpi=110)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/benchmarks")
    main(parser.parse_args().out)
