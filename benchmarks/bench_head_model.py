"""Benchmark the offline template head: build, cached reload, forward models.

Run:  python benchmarks/bench_head_model.py
Writes docs/benchmarks/head_model.{md,json} and docs/benchmarks/head_model.png
(BEM cross-sections and skull/scalp thickness). Builds into a temporary folder so
the first build is really a first build.
"""

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mne  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pyvista as pv  # noqa: E402
import torch  # noqa: E402

import mne_brainforge  # noqa: E402
from mne_brainforge.datasets import fetch_fsaverage  # noqa: E402
from mne_brainforge.head._geometry import surface_distance  # noqa: E402

OUT = Path(__file__).parents[1] / "docs" / "benchmarks"
MONTAGES = {16: "biosemi16", 32: "biosemi32", 64: "biosemi64", 128: "biosemi128"}


def _info(name):
    mon = mne.channels.make_standard_montage(name)
    info = mne.create_info(mon.ch_names, 250.0, "eeg")
    info.set_montage(mon)
    return info


def _timed(func, *args, **kwargs):
    t0 = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - t0


def main():
    mne.set_log_level("error")
    results = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads",
        "mne": mne.__version__,
        "mne_brainforge": mne_brainforge.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MNE_BRAINFORGE_DATA"] = tmp  # this process only, not MNE's config
        _, results["first_build_s"] = _timed(fetch_fsaverage)
        reloads = [_timed(fetch_fsaverage)[1] for _ in range(5)]
        results["cached_reload_s"] = float(np.median(reloads))
        results["forward_s"] = {}
        for n_ch, name in MONTAGES.items():
            info = _info(name)
            times = [
                _timed(mne_brainforge.make_fsaverage_forward, info)[1] for _ in range(2)
            ]
            results["forward_s"][n_ch] = {"first": times[0], "second": times[1]}
        subjects_dir = fetch_fsaverage()
        geometry = json.loads(
            (subjects_dir / "fsaverage/bem/geometry.json").read_text()
        )
        results["geometry"] = geometry
        _figure(subjects_dir, OUT / "head_model.png")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "head_model.json").write_text(json.dumps(results, indent=1))
    (OUT / "head_model.md").write_text(_table(results))
    print(_table(results))


def _table(r):
    rows = [
        "# Template head model benchmark",
        "",
        f"Machine: {r['machine']}; mne {r['mne']}; mne-brainforge {r['mne_brainforge']}.",
        "Reproduce: `python benchmarks/bench_head_model.py`.",
        "",
        "| step | target | measured |",
        "|---|---|---|",
        f"| first template build (surfaces, outer skull, BEM solution, source space) "
        f"| <= 180 s | {r['first_build_s']:.1f} s |",
        f"| cached reload (`fetch_fsaverage`, manifest verified) | <= 2 s "
        f"| {r['cached_reload_s']:.2f} s |",
    ]
    for n_ch, t in r["forward_s"].items():
        target = "<= 30 s" if int(n_ch) == 64 else ""
        rows.append(
            f"| forward model, {n_ch} channels (first / repeated call) | {target} "
            f"| {t['first']:.1f} s / {t['second']:.1f} s |"
        )
    g = r["geometry"]
    rows += [
        "",
        "Layer thickness (closest-point distance between surfaces, mm):",
        "",
        "| layer | min | 5th pct | median | 95th pct | max |",
        "|---|---|---|---|---|---|",
    ]
    for layer, key in (
        ("skull", "skull_thickness_mm"),
        ("scalp", "scalp_thickness_mm"),
    ):
        v = g[key]
        rows.append(
            f"| {layer} | {v['min']} | {v['p5']} | {v['median']} | {v['p95']} | {v['max']} |"
        )
    rows += ["", "![BEM cross-sections and thickness](head_model.png)", ""]
    return "\n".join(rows)


def _figure(subjects_dir, fname):
    bem = subjects_dir / "fsaverage" / "bem"
    surf = subjects_dir / "fsaverage" / "surf"
    layers = {
        "scalp": (bem / "outer_skin.surf", "tab:orange"),
        "outer skull": (bem / "outer_skull.surf", "tab:blue"),
        "inner skull": (bem / "inner_skull.surf", "tab:green"),
        "white (lh)": (surf / "lh.white", "0.4"),
        "white (rh)": (surf / "rh.white", "0.4"),
    }
    meshes = {}
    for name, (path, _) in layers.items():
        rr, tris = nib.freesurfer.read_geometry(path)
        meshes[name] = (
            rr,
            tris,
            pv.PolyData(rr, np.c_[np.full(len(tris), 3), tris].ravel()),
        )
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.5))
    planes = (
        ("coronal y = -20 mm", 1, (0, 2)),
        ("sagittal x = 30 mm", 0, (1, 2)),
        ("axial z = 20 mm", 2, (0, 1)),
    )
    offsets = {0: 30.0, 1: -20.0, 2: 20.0}
    for ax, (title, axis, (i, j)) in zip(axes, planes):
        normal = np.eye(3)[axis]
        for name, (_path, color) in layers.items():
            cut = meshes[name][2].slice(normal=normal, origin=normal * offsets[axis])
            if cut.n_points == 0:
                continue
            lines = cut.lines.reshape(-1, 3)[:, 1:]
            for a, b in lines:
                ax.plot(cut.points[[a, b], i], cut.points[[a, b], j], color=color, lw=1)
            ax.plot([], [], color=color, label=name)
        ax.set_title(title)
        ax.set_aspect("equal")
        ax.set_xlabel("mm")
    axes[0].legend(loc="lower left", fontsize=8)
    inner, outer, skin = (
        meshes[k][:2] for k in ("inner skull", "outer skull", "scalp")
    )
    skull = surface_distance(outer[0] / 1e3, inner[0] / 1e3, inner[1]) * 1e3
    scalp = surface_distance(outer[0] / 1e3, skin[0] / 1e3, skin[1]) * 1e3
    axes[3].hist(skull, bins=40, alpha=0.7, label="skull")
    axes[3].hist(scalp[scalp < 20], bins=40, alpha=0.7, label="scalp (< 20 mm)")
    axes[3].set_xlabel("thickness (mm)")
    axes[3].set_ylabel("outer-skull vertices")
    axes[3].legend()
    axes[3].set_title("layer thickness")
    fig.tight_layout()
    fig.savefig(fname, dpi=110)


if __name__ == "__main__":
    main()
