"""Regions to sources: piecewise constant (the default) or smoothly spread?

Run:  python benchmarks/region_spread.py [--model PATH] [--out docs/benchmarks]
The network outputs one time course per region; the estimate gives each source
its region's value. The alternative measured here gives each source a Gaussian-
weighted mean of the regions of its hemisphere by distance to their centres
(sigma 6, 10, 15 mm, weights summing to 1), which moves a peak between two
active regions. Both are scored on the project benchmark's 64-channel trials
(head-model mismatch, unseen waveforms, SNR 0-20 dB, 1-3 sources). Writes
region_spread.{md,json}.
"""

import argparse
import json
from pathlib import Path

import mne
import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from mne_brainforge.evaluation.benchmark import run_benchmark, summarize
from mne_brainforge.inverse import apply_brainforge_inverse
from mne_brainforge.nn import BrainForgeModel
from mne_brainforge.weights import load_pretrained

SIGMAS_MM = (6, 10, 15)
METRICS = ("localization_error", "spatial_dispersion", "auc")


def gaussian_spread(parcellation, sigma):
    """(n_sources, n_regions) weights: Gaussian in the distance to region centres."""
    tree = cKDTree(parcellation.centres)
    rows, cols, vals = [], [], []
    near = tree.query_ball_point(parcellation.pos, 3 * sigma)
    for v, regions in enumerate(near):
        hemi = parcellation.hemis[parcellation.labels[v]]
        regions = [r for r in regions if parcellation.hemis[r] == hemi] or [
            parcellation.labels[v]
        ]
        d2 = np.sum((parcellation.pos[v] - parcellation.centres[regions]) ** 2, axis=1)
        w = np.exp(-d2 / (2 * sigma**2))
        rows += [v] * len(regions)
        cols += regions
        vals += list(w / w.sum())
    shape = (parcellation.n_sources, parcellation.n_regions)
    return sparse.csr_matrix((vals, (rows, cols)), shape=shape)


def main(model, out):
    mne.set_log_level("error")
    par = model.parcellation
    first = np.array([s[0] for s in par.region_sources])  # one source per region
    last = {}

    def piecewise(evoked, forward, noise_cov):
        if last.get("evoked") is not evoked:  # one network run per trial
            last.update(
                evoked=evoked, stc=apply_brainforge_inverse(evoked, forward, model)
            )
        return last["stc"]

    methods = {"piecewise constant": piecewise}
    for sigma in SIGMAS_MM:
        spread = gaussian_spread(par, sigma / 1e3)

        def smooth(evoked, forward, noise_cov, spread=spread):
            stc = piecewise(evoked, forward, noise_cov)
            return mne.SourceEstimate(
                spread @ stc.data[first],
                stc.vertices,
                stc.tmin,
                stc.tstep,
                subject=stc.subject,
            )

        methods[f"Gaussian, sigma {sigma} mm"] = smooth
    records = run_benchmark(methods, montages=(64,), verbose=False)
    summary = summarize(records, ("n_sources",))
    results = {
        name: {
            f"{n} source{'s' if n > 1 else ''}": {
                m: summary[(n,)][name][m][1] for m in METRICS
            }
            for (n,) in summary
        }
        for name in methods
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "region_spread.json").write_text(json.dumps(results, indent=1))
    groups = list(next(iter(results.values())))
    lines = [
        "# Regions to sources: piecewise constant or Gaussian spread",
        "",
        "Reproduce: `python benchmarks/region_spread.py`. The same network estimates, spread "
        "over the sources in two ways; means over the benchmark's 64-channel trials "
        "(SNR 0/5/10/20 dB, 2 trials each). Cells: localization error (mm) / spatial "
        "dispersion (mm) / AUC.",
        "",
        "| spread | " + " | ".join(groups) + " |",
        "|---" * (len(groups) + 1) + "|",
    ]
    for name, res in results.items():
        cells = [
            "{:.1f} / {:.1f} / {:.3f}".format(*(res[g][m] for m in METRICS))
            for g in groups
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    (out / "region_spread.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=None, help="Model file (default: pretrained)."
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parents[1] / "docs/benchmarks"
    )
    args = parser.parse_args()
    main(
        BrainForgeModel.load(args.model) if args.model else load_pretrained(), args.out
    )
