"""Benchmark the batched simulation engine against the per-window EEGSimulator.

Run:  python benchmarks/bench_engine.py [--batches 20] [--heads all|cached]
Writes docs/benchmarks/engine.{md,json} and docs/simulation_engine/*.png
(``--waveforms-only``: only the figure of the waveform families).

Setting of the throughput figures: 64 channels (the 10-10 cap), 1 s windows at
100 Hz, batch 256, 0-5 sources, random noise kind and SNR; the old
EEGSimulator gets the same forward (the 64 channels picked from the family's
10-05 template forward), the same library and sampling rate. The machine's
two cores are shared with other jobs: the load average is recorded, and
throughput is also given per CPU-second of this process.
"""

import argparse
import json
import multiprocessing
import os
import resource
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mne  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mne_brainforge import make_fsaverage_forward  # noqa: E402
from mne_brainforge.head import (  # noqa: E402
    cortex_normal,
    fixed_orientation_gain,
    make_montage_info,
)
from mne_brainforge.head.family import (  # noqa: E402
    CAP_CHANNELS,
    DEFAULT_HEADS,
    SUPERSET_MONTAGE,
    make_head_model_family,
)
from mne_brainforge.simulation import (  # noqa: E402
    EEGSimulator,
    build_waveform_library,
    fetch_waveform_library,
)
from mne_brainforge.simulation.engine import (  # noqa: E402
    REFERENCES,
    SOURCE_KINDS,
    BatchedEEGGenerator,
    seed_for,
)
from mne_brainforge.simulation.library import DEFAULT_FNAME, DEFAULT_SETTINGS  # noqa: E402
from mne_brainforge.simulation.waveforms import fetch_waveform_bank  # noqa: E402
from mne_brainforge.utils import get_data_path  # noqa: E402

ROOT = Path(__file__).parents[1]
OUT = ROOT / "docs" / "benchmarks"
FIG = ROOT / "docs" / "simulation_engine"


def _library(full):
    """The default TVB library, or a reduced one (19 regions x 2 settings) if asked."""
    if full or (get_data_path() / DEFAULT_FNAME).is_file():
        return fetch_waveform_library(), "default"
    regions = np.arange(0, 76, 4)
    library = build_waveform_library(regions=regions, settings=DEFAULT_SETTINGS[:2])
    return library, f"reduced: {len(regions)} target regions x 2 settings"


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _throughput(generator, batch_size, n_batches, threads):
    torch.set_num_threads(threads)
    generator.draw(batch_size, seed_for(0, 0, 0, 10_000))  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    for step in range(n_batches):
        generator.draw(batch_size, seed_for(0, 0, 0, step))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = batch_size * n_batches
    return dict(threads=threads, windows_per_s=n / wall, windows_per_cpu_s=n / cpu)


def _worker(generator, batch_size, n_batches, worker, queue):
    torch.set_num_threads(1)
    generator.draw(batch_size, seed_for(0, 0, worker, 10_000))  # warm-up
    queue.put(time.perf_counter())
    for step in range(n_batches):
        generator.draw(batch_size, seed_for(0, 0, worker, step))
    queue.put(time.perf_counter())


def _throughput_processes(generator, batch_size, n_batches, n_workers=2):
    """Aggregate rate of forked 1-thread workers (like 2 DataLoader workers)."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(generator, batch_size, n_batches, w, queue))
        for w in range(n_workers)
    ]
    for proc in procs:
        proc.start()
    stamps = sorted(queue.get() for _ in range(2 * n_workers))
    for proc in procs:
        proc.join()
    # from the last warm-up end to the last finish: all workers drawing
    wall = stamps[-1] - stamps[n_workers - 1]
    return dict(
        processes=n_workers,
        threads_each=1,
        windows_per_s=n_workers * batch_size * n_batches / wall,
    )


def _old_throughput(fwd, library, n):
    torch.set_num_threads(2)
    sim = EEGSimulator(
        fwd,
        library,
        sfreq=100.0,
        duration=1.0,
        n_channels_range=(64, 64),
        max_sources=5,
    )
    rng = np.random.default_rng(0)
    sim.draw(rng)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        sim.draw(rng)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return dict(windows_per_s=n / wall, windows_per_cpu_s=n / cpu)


def _interpolation_error(family):
    """Gain error of BioSemi 64 placed on the 10-05 superset, vs its own forward."""
    truth, names = fixed_orientation_gain(
        cortex_normal(
            make_fsaverage_forward(make_montage_info("biosemi64"), verbose="error")
        )
    )
    cap = family.channel_set("biosemi64", max_distance=0.05)
    keep = [names.index(n) for n in cap.ch_names]
    truth = truth[keep] - truth[keep].mean(0)
    index, weight = family.interpolation(cap.base, cap.offset)
    interpolated = np.einsum("cn,cns->cs", weight, family.gains[0][index])

    def error(gain):
        gain = gain - gain.mean(0)
        return float(np.linalg.norm(gain - truth) / np.linalg.norm(truth))

    return dict(
        mean_offset_mm=float(np.linalg.norm(cap.offset, axis=1).mean() * 1e3),
        max_offset_mm=float(np.linalg.norm(cap.offset, axis=1).max() * 1e3),
        relative_error_first_order=error(interpolated),
        relative_error_nearest_electrode=error(family.gains[0][cap.base]),
    )


def _plot_waveforms(bank):
    fig, axes = plt.subplots(
        len(bank.families), 1, figsize=(7, 1.4 * len(bank.families)), sharex=True
    )
    t = (np.arange(2 * bank.n_times) - bank.n_times) / bank.sfreq
    rng = np.random.default_rng(0)
    for f, (ax, name) in enumerate(zip(axes, bank.families)):
        rows = int(bank.start[f]) + rng.choice(int(bank.count[f]), 4, replace=False)
        for row in rows:
            ax.plot(t, bank.waveforms[row].numpy(), lw=0.8)
        ax.set_ylabel(name, rotation=0, ha="right")
        ax.set_yticks([])
    axes[-1].set_xlabel("time from the bank centre (s); a draw takes a 1 s slice")
    fig.suptitle(f"Waveform families (4 examples each, {bank.sfreq:g} Hz)")
    fig.tight_layout()
    fig.savefig(FIG / "waveform_families.png", dpi=110)
    plt.close(fig)


def _plot_batch(generator, batch):
    rr = generator.src_rr.numpy()
    items = [int(i) for i in np.flatnonzero(batch["n_sources"].numpy() > 0)[:4]]
    fig, axes = plt.subplots(
        2, len(items), figsize=(3.2 * len(items), 6), squeeze=False
    )
    times = np.arange(generator.n_times) / generator.sfreq
    moments = generator.source_map(batch).numpy()
    for col, b in enumerate(items):
        ax = axes[0, col]
        on = moments[b] > 0
        ax.scatter(rr[:, 0], rr[:, 1], s=0.2, c="0.85")
        ax.scatter(rr[on, 0], rr[on, 1], s=2, c=moments[b, on], cmap="viridis")
        kinds = [SOURCE_KINDS[k] for k in batch["source_kind"][b].tolist() if k >= 0]
        ax.set_title(f"{len(kinds)} source(s): {', '.join(kinds)}", fontsize=8)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax = axes[1, col]
        eeg = batch["eeg"][b][batch["mask"][b]].numpy() * 1e6
        ax.plot(times, eeg.T, lw=0.4, c="k", alpha=0.4)
        ref = REFERENCES[int(batch["reference_kind"][b])]
        noise = generator.noise_kinds[int(batch["noise_kind"][b])]
        ax.set_title(
            f"{int(batch['mask'][b].sum())} ch, {noise} noise, "
            f"SNR {float(batch['snr_db'][b]):.0f} dB, {ref} ref",
            fontsize=8,
        )
        ax.set_xlabel("s")
    axes[1, 0].set_ylabel("µV")
    fig.suptitle("Example batch: sources (top view, peak moment) and EEG (butterfly)")
    fig.tight_layout()
    fig.savefig(FIG / "example_batch.png", dpi=110)
    plt.close(fig)


def main(n_batches, heads, full_library):
    mne.set_log_level("error")
    FIG.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    library, library_kind = _library(full_library)
    family = make_head_model_family(heads)
    family_s = time.perf_counter() - t0
    bank = fetch_waveform_bank(library, sfreq=100.0, n_times=100)
    rss_family = _rss_mb()
    names = CAP_CHANNELS["10-10 (64)"].split()
    cap64 = family.channel_set(SUPERSET_MONTAGE, name="10-10 (64)", picks=names)
    t0 = time.perf_counter()
    gen64 = BatchedEEGGenerator(family, bank, channel_sets=[cap64])
    setup_s = time.perf_counter() - t0
    new = [_throughput(gen64, 256, n_batches, threads) for threads in (1, 2)]
    workers = _throughput_processes(gen64, 256, n_batches)
    rss_after = _rss_mb()
    mixed = BatchedEEGGenerator(family, bank)  # all caps, up to 170 channels
    mixed_result = _throughput(mixed, 256, max(n_batches // 2, 3), 1)

    template = cortex_normal(
        mne.pick_channels_forward(
            _template_forward(family), include=names, ordered=True
        )
    )
    old = _old_throughput(template, library, 100)
    interpolation = _interpolation_error(family)
    load_end = os.getloadavg()

    _plot_waveforms(bank)
    _plot_batch(gen64, gen64.draw(16, seed=0))

    result = dict(
        setting="1 s windows, 100 Hz, 64 channels (10-10), batch 256, 0-5 sources",
        load_average=dict(start=load_start, end=load_end),
        n_cores=os.cpu_count(),
        family=dict(
            heads=[dict(p) for p in family.params],
            n_channels=family.n_channels,
            n_sources=family.n_sources,
            build_or_load_s=family_s,
        ),
        waveform_bank=repr(bank),
        tvb_library=f"{library_kind}: {library.n_spikes} spikes, "
        f"{library.n_background} background segments",
        generator_setup_s=setup_s,
        engine=new,
        engine_2_processes=workers,
        engine_all_caps_up_to_170_channels=mixed_result,
        old_eeg_simulator=old,
        speedup_wall=max(r["windows_per_s"] for r in [*new, workers])
        / old["windows_per_s"],
        speedup_cpu=max(r["windows_per_cpu_s"] for r in new) / old["windows_per_cpu_s"],
        peak_rss_mb=dict(after_family_and_bank=rss_family, after_draws=rss_after),
        electrode_interpolation=interpolation,
        torch=torch.__version__,
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "engine.json").write_text(json.dumps(result, indent=1))
    (OUT / "engine.md").write_text(_markdown(result))
    print(json.dumps(result, indent=1))


def _template_forward(family):
    """The family's first head model as an mne.Forward (from the forward cache)."""
    from mne_brainforge.utils import get_data_path

    p = family.params[0]
    path = (
        get_data_path()
        / "forwards"
        / f"{SUPERSET_MONTAGE}-{p['skull_conductivity']:g}S-"
        f"{p['skull_thickness'] * 1e3:g}mm-fwd.fif"
    )
    return mne.read_forward_solution(path, verbose="error")


def _markdown(r):
    rows = "\n".join(
        f"| engine, {e['threads']} thread(s) | {e['windows_per_s']:,.0f} | "
        f"{e['windows_per_cpu_s']:,.0f} |"
        for e in r["engine"]
    )
    old, mixed, interp = (
        r["old_eeg_simulator"],
        r["engine_all_caps_up_to_170_channels"],
        r["electrode_interpolation"],
    )
    heads = ", ".join(
        f"{h['skull_conductivity']:g} S/m / {h['skull_thickness'] * 1e3:g} mm"
        for h in r["family"]["heads"]
    )
    load = r["load_average"]
    return f"""# Batched simulation engine benchmark

Reproduce: `python benchmarks/bench_engine.py` (2-core CPU machine, torch
{r["torch"]}). Setting: {r["setting"]}, random noise kind and SNR, random
reference, dropouts, electrode jitter; {len(r["family"]["heads"])} head models
({heads}) on the {r["family"]["n_channels"]}-electrode 10-05 superset,
{r["family"]["n_sources"]} sources.

| generator | windows/s (wall) | windows per CPU-second |
|---|---|---|
{rows}
| engine, 2 forked processes x 1 thread (as 2 DataLoader workers) | {r["engine_2_processes"]["windows_per_s"]:,.0f} | |
| engine, all caps (10-20 ... HydroCel 256, up to 170 channels), 1 thread | {mixed["windows_per_s"]:,.0f} | {mixed["windows_per_cpu_s"]:,.0f} |
| old `EEGSimulator` (one window at a time, same forward and sampling rate) | {old["windows_per_s"]:,.1f} | {old["windows_per_cpu_s"]:,.1f} |

Speed-up over the old simulator in the same run: {r["speedup_wall"]:,.0f}x
(wall), {r["speedup_cpu"]:,.0f}x (CPU time).

The two cores were shared with other jobs: load average {load["start"][0]:.1f}
at the start and {load["end"][0]:.1f} at the end (1-minute). Wall-clock figures
are therefore pessimistic; "windows per CPU-second" counts only the CPU time of
this process. On a loaded machine torch's 2 intra-op threads wait for each
other (compare the 1- and 2-thread rows): run the engine with
`torch.set_num_threads(1)` per process and one process per core (DataLoader
workers, or DDP ranks), each with its own seed stream (`seed_for`).

Memory: peak resident set {r["peak_rss_mb"]["after_draws"]:,.0f} MB, reached while
building the family ({r["peak_rss_mb"]["after_family_and_bank"]:,.0f} MB after
loading it and the bank): the {len(r["family"]["heads"])} cached forwards are
read as free-orientation float64 solutions before the conversion. What the
generator keeps is much smaller: the gains {len(r["family"]["heads"])} x
{r["family"]["n_channels"]} x {r["family"]["n_sources"]} float32 (numpy, plus the
torch gather table of the electrodes the caps use), the geodesic
neighbourhoods (2 x 20484 x the largest 30 mm neighbourhood, int32/float32)
and the bank. Set-up of the generator (neighbourhoods from the cache, gain
table): {r["generator_setup_s"]:.1f} s; family build or load:
{r["family"]["build_or_load_s"]:.0f} s.

Electrode positions off the superset (caps, jitter) are first-order
interpolations of the gain around the nearest superset electrode. For the
BioSemi 64 cap (offsets {interp["mean_offset_mm"]:.1f} mm on average, at most
{interp["max_offset_mm"]:.1f} mm), the relative error of the
average-referenced gain against BioSemi 64's own forward is
{interp["relative_error_first_order"]:.3f} (nearest electrode, no
interpolation: {interp["relative_error_nearest_electrode"]:.3f}).

Waveform bank: `{r["waveform_bank"]}`, from the TVB library
({r["tvb_library"]}).

![waveform families](../simulation_engine/waveform_families.png)
![example batch](../simulation_engine/example_batch.png)
"""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument(
        "--heads",
        choices=("all", "template"),
        default="all",
        help="all: the default family (5 heads); template: the template only",
    )
    parser.add_argument(
        "--full-library",
        action="store_true",
        help="build the default TVB library if it is not cached (about 15-45 min); "
        "else a reduced library is simulated (a few minutes)",
    )
    parser.add_argument(
        "--waveforms-only",
        action="store_true",
        help="only draw docs/simulation_engine/waveform_families.png",
    )
    args = parser.parse_args()
    heads = DEFAULT_HEADS if args.heads == "all" else DEFAULT_HEADS[:1]
    if args.waveforms_only:
        FIG.mkdir(parents=True, exist_ok=True)
        library = _library(args.full_library)[0]
        _plot_waveforms(fetch_waveform_bank(library, sfreq=100.0, n_times=100))
    else:
        main(args.batches, heads, args.full_library)
