"""Benchmark BrainForge inference: latency, long recordings, size and FLOPs.

Run:  python benchmarks/bench_inference.py [--model PATH] [--raw-minutes 10]
Writes docs/benchmarks/inference.{md,json} (or --out-dir). On the fsaverage
template with the biosemi64 montage, for a model file (default: the pretrained
model, ``mne_brainforge.load_pretrained()``):

1. latency of the network alone on one window (``model.predict_regions``,
   median of ``--n-calls`` calls after a warm-up) and per window in batches,
   of a full ``apply_brainforge_inverse`` on a 1 s Evoked, next to sLORETA's
   ``apply_inverse`` on the same Evoked (inverse operator made and prepared
   once, as ``MNEInverse`` in the benchmark does);
2. ``apply_brainforge_inverse_raw`` on a ``--raw-minutes`` long 64-channel
   RawArray at 250 Hz, in a fresh subprocess (wall time, peak RSS increase from
   ``getrusage`` and peak Python/NumPy allocations from ``tracemalloc``);
3. parameters and FLOPs per window (``torch.utils.flop_counter.FlopCounterMode``).

The machine may be shared (e.g. a training run): the load average at the start
and end is recorded with the results.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mne
import numpy as np
import torch

import mne_brainforge

OUT = Path(__file__).parents[1] / "docs" / "benchmarks"
MONTAGE = "biosemi64"
SFREQ = 250.0


def _info():
    mon = mne.channels.make_standard_montage(MONTAGE)
    info = mne.create_info(mon.ch_names, SFREQ, "eeg")
    info.set_montage(mon)
    return info


def _eeg(n_channels, n_times, seed=0):
    """Random EEG-like data (V): white noise, 10 uV, with channel offsets."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_channels, n_times)) * 1e-5 + rng.uniform(
        -1e-5, 1e-5, (n_channels, 1)
    )


def _load_model(spec):
    from mne_brainforge.inverse._core import _load_model as load

    return load(spec or None)


def _stats(times):
    times = np.asarray(times, float)
    return dict(
        median_s=float(np.median(times)),
        p10_s=float(np.percentile(times, 10)),
        p90_s=float(np.percentile(times, 90)),
        n_calls=len(times),
    )


def _time_calls(func, n_calls, n_warmup):
    for _ in range(n_warmup):
        func()
    times = []
    for _ in range(n_calls):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return _stats(times)


def _rss_mb():
    """Current resident set size (MB)."""
    with open("/proc/self/statm") as fid:
        return int(fid.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _reset_peak_rss():
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb():
    """Peak RSS (MB) since the last reset (VmHWM), else since the start (ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _maxrss_mb()


def raw_worker(fwd_file, model_spec, minutes, threads):
    """Run in a fresh process: apply_brainforge_inverse_raw on a long RawArray."""
    import tracemalloc

    from mne_brainforge import apply_brainforge_inverse_raw
    from mne_brainforge.inverse import _core

    torch.set_num_threads(threads)
    mne.set_log_level("error")
    model = _load_model(model_spec)
    fwd = mne.read_forward_solution(fwd_file)
    info = _info()
    n_samples = int(round(minutes * 60 * SFREQ))
    raw = mne.io.RawArray(_eeg(len(info.ch_names), n_samples), info)
    result = dict(
        minutes=minutes,
        n_channels=len(info.ch_names),
        sfreq=SFREQ,
        n_samples=n_samples,
        data_mb=raw._data.nbytes / 2**20,
    )
    up, down = _core._ratio(SFREQ, model.sfreq)
    result["n_windows"] = len(_core._windows(-(-n_samples * up // down), model.n_times))
    result["rss_before_mb"] = _rss_mb()
    # the setup (forward file, model) may have peaked higher than the call will:
    # measure the call's own peak from a reset mark where the kernel allows it
    result["peak_rss_method"] = (
        "VmHWM after clear_refs"
        if _reset_peak_rss()
        else "ru_maxrss, which includes the setup's peak"
    )
    peak_before = _peak_rss_mb()
    t0 = time.perf_counter()
    stc = apply_brainforge_inverse_raw(raw, fwd, model)
    result["wall_s"] = time.perf_counter() - t0
    result["peak_rss_mb"] = _peak_rss_mb()
    result["peak_rss_increase_mb"] = result["peak_rss_mb"] - max(
        peak_before, result["rss_before_mb"]
    )
    result["max_rss_process_mb"] = _maxrss_mb()
    result["stc_shape"] = list(stc.shape)
    result["stc_region_data_mb"] = (
        stc._sens_data.nbytes / 2**20 if stc._kernel is not None else None
    )
    result["stc_full_data_gb"] = stc.shape[0] * stc.shape[1] * 8 / 2**30
    del stc
    tracemalloc.start()
    t0 = time.perf_counter()
    apply_brainforge_inverse_raw(raw, fwd, model)
    result["wall_tracemalloc_s"] = time.perf_counter() - t0
    result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(json.dumps(result))


def _flops(model, ch_pos):
    """FLOPs of one window through the network, in total and per top-level module."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.as_tensor(_eeg(len(ch_pos), model.n_times)[None], dtype=torch.float32)
    x = x / x.abs().max()
    topo = model.topomap(ch_pos)
    net = model.net.eval()
    # The fused fast path of nn.TransformerEncoderLayer (eval, no grad) and the
    # CPU flash attention kernel are single ops that FlopCounterMode does not
    # count: count the same computation through the ordinary layers and the math
    # attention (matrix products).
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with (
            torch.no_grad(),
            sdpa_kernel(SDPBackend.MATH),
            FlopCounterMode(display=False) as counter,
        ):
            net(x, topo)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    per_module = {}
    for name, ops in counter.get_flop_counts().items():
        parts = name.split(".")
        if len(parts) == 2:  # BrainForgeNet.<child>
            per_module[parts[1]] = int(sum(ops.values()))
    total = int(counter.get_total_flops())
    per_op = {
        str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()
    }
    params = {
        name: sum(p.numel() for p in child.parameters())
        for name, child in net.named_children()
    }
    return dict(
        total=total,
        per_module=per_module,
        per_op=per_op,
        parameters=sum(p.numel() for p in net.parameters()),
        parameters_per_module=params,
    )


def _model_file(spec):
    """What the model is, for the report: name or path, and the file's SHA-256."""
    from mne_brainforge.utils import file_sha256 as _sha256
    from mne_brainforge.weights import DEFAULT_WEIGHTS, fetch_weights, list_weights

    if not spec or spec in list_weights():
        name = spec or DEFAULT_WEIGHTS
        fname = fetch_weights(name, download=False)
        return f"pretrained `{name}` ({fname.name}, sha256 {_sha256(fname)[:12]})"
    return f"`{spec}` (sha256 {_sha256(spec)[:12]})"


def _machine(threads):
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = None
    try:
        from threadpoolctl import threadpool_info

        blas = sorted(
            {
                f"{p['internal_api']} {p['num_threads']} threads"
                for p in threadpool_info()
            }
        )
    except ImportError:
        pass
    return dict(
        cpu=cpu,
        cpu_count=os.cpu_count(),
        torch_threads=threads,
        torch=torch.__version__,
        mne=mne.__version__,
        numpy=np.__version__,
        mne_brainforge=mne_brainforge.__version__,
        blas=blas,
        python=platform.python_version(),
    )


def main(args):
    from mne_brainforge import apply_brainforge_inverse, make_fsaverage_forward
    from mne_brainforge.inverse import MNEInverse

    load_start = os.getloadavg()
    torch.set_num_threads(args.threads)
    mne.set_log_level("error")
    command = "python benchmarks/bench_inference.py " + " ".join(sys.argv[1:])
    results = dict(
        command=command.strip(),
        machine=_machine(args.threads),
        load_average_start=load_start,
    )
    model = _load_model(args.model)
    results["model"] = dict(
        file=_model_file(args.model),
        n_regions=model.parcellation.n_regions,
        n_sources=model.parcellation.n_sources,
        sfreq=model.sfreq,
        n_times=model.n_times,
        window_s=model.n_times / model.sfreq,
        net=model.config.get("net"),
        training_steps=model.config.get("training", {}).get("steps_done"),
    )
    info = _info()
    fwd = make_fsaverage_forward(info)
    fwd_fixed = mne.convert_forward_solution(fwd, surf_ori=True, force_fixed=True)
    ch_pos = np.array([ch["loc"][:3] for ch in info["chs"]])
    n_ch = len(ch_pos)

    # (1) latency
    print(f"network alone: {args.n_calls} calls ...", flush=True)
    window = _eeg(n_ch, model.n_times)[None]
    latency = {
        "network_window": _time_calls(
            lambda: model.predict_regions(window, ch_pos), args.n_calls, 10
        )
    }
    batch = np.repeat(window, args.batch, axis=0)
    stats = _time_calls(
        lambda: model.predict_regions(batch, ch_pos), max(5, args.n_calls // 10), 2
    )
    latency["network_batch"] = dict(
        stats, batch=args.batch, per_window_s=stats["median_s"] / args.batch
    )
    evoked = mne.EvokedArray(_eeg(n_ch, int(SFREQ)), info, tmin=0.0)
    print(
        f"apply_brainforge_inverse / sLORETA: {args.n_apply} calls each ...", flush=True
    )
    latency["apply_brainforge_inverse"] = _time_calls(
        lambda: apply_brainforge_inverse(evoked, fwd, model), args.n_apply, 2
    )
    latency["apply_brainforge_inverse_fixed"] = _time_calls(
        lambda: apply_brainforge_inverse(evoked, fwd_fixed, model), args.n_apply, 2
    )
    ev_ref = evoked.copy().set_eeg_reference(projection=True)
    cov = mne.make_ad_hoc_cov(info)
    sloreta = MNEInverse("sLORETA")
    t0 = time.perf_counter()
    sloreta(ev_ref, fwd, cov)  # makes and prepares the operator, then applies it
    latency["sloreta_operator_and_first_apply_s"] = time.perf_counter() - t0
    latency["sloreta_apply_inverse"] = _time_calls(
        lambda: sloreta(ev_ref, fwd, cov), args.n_apply, 1
    )
    results["latency"] = latency
    results["evoked"] = dict(n_channels=n_ch, sfreq=SFREQ, n_times=int(SFREQ))

    # (3) size and FLOPs
    results["flops"] = _flops(model, ch_pos)

    # (2) long continuous data, in a fresh process for a clean peak RSS
    if args.raw_minutes > 0:
        print(
            f"apply_brainforge_inverse_raw on {args.raw_minutes:g} min ...", flush=True
        )
        with tempfile.TemporaryDirectory() as tmp:
            fwd_file = Path(tmp) / "bench-fwd.fif"
            mne.write_forward_solution(fwd_file, fwd)
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--raw-worker",
                    str(fwd_file),
                    "--model",
                    str(args.model or ""),
                    "--raw-minutes",
                    str(args.raw_minutes),
                    "--threads",
                    str(args.threads),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        if out.returncode:
            raise RuntimeError(f"The raw worker failed:\n{out.stderr[-3000:]}")
        results["raw"] = json.loads(out.stdout.strip().splitlines()[-1])
    results["load_average_end"] = os.getloadavg()

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "inference.json").write_text(json.dumps(results, indent=1))
    (out_dir / "inference.md").write_text(_markdown(results))
    print((out_dir / "inference.md").read_text())
    print(f"written to {out_dir / 'inference.md'} and {out_dir / 'inference.json'}")


def _ms(stats):
    return (
        f"{stats['median_s'] * 1e3:.1f} ms",
        f"{stats['p10_s'] * 1e3:.1f}-{stats['p90_s'] * 1e3:.1f} ms",
        str(stats["n_calls"]),
    )


def _markdown(r):
    m, mach, lat, fl = r["model"], r["machine"], r["latency"], r["flops"]
    la = ", ".join(f"{x:.2f}" for x in r["load_average_start"])
    la_end = ", ".join(f"{x:.2f}" for x in r["load_average_end"])
    window = f"{m['n_times']} samples at {m['sfreq']:g} Hz ({m['window_s']:g} s)"
    rows = [
        (
            "network alone, one window (`model.predict_regions`)",
            *_ms(lat["network_window"]),
        ),
        (
            f"network alone, per window in batches of {lat['network_batch']['batch']}",
            f"{lat['network_batch']['per_window_s'] * 1e3:.1f} ms",
            "",
            str(lat["network_batch"]["n_calls"]),
        ),
        (
            "`apply_brainforge_inverse`, 1 s Evoked (free-orientation forward, as "
            "`make_fsaverage_forward` gives)",
            *_ms(lat["apply_brainforge_inverse"]),
        ),
        (
            "`apply_brainforge_inverse`, same, fixed-orientation forward",
            *_ms(lat["apply_brainforge_inverse_fixed"]),
        ),
        (
            "sLORETA `apply_inverse`, same Evoked (operator prepared once)",
            *_ms(lat["sloreta_apply_inverse"]),
        ),
        (
            "sLORETA: make + prepare the operator, first apply (once per forward/covariance)",
            f"{lat['sloreta_operator_and_first_apply_s'] * 1e3:.0f} ms",
            "",
            "1",
        ),
    ]
    lines = [
        "# Inference benchmark",
        "",
        f"Reproduce: `{r['command']}`",
        "",
        f"Machine: {mach['cpu']}, {mach['cpu_count']} cores; torch {mach['torch']} with "
        f"{mach['torch_threads']} threads; NumPy BLAS: {', '.join(mach['blas'] or ['?'])}; "
        f"MNE {mach['mne']}, mne-brainforge {mach['mne_brainforge']}. Load average (1, 5, 15 "
        f"min) at the start: {la}; at the end: {la_end}. Other jobs may share the CPU: a "
        "load above 0 makes every figure pessimistic.",
        "",
        f"Model: {m['file']}: {m['n_regions']} regions over {m['n_sources']} sources, window "
        f"{window}, {fl['parameters']:,} parameters"
        + (f", {m['training_steps']} training steps" if m.get("training_steps") else "")
        + ".",
        "",
        f"## Latency: fsaverage template, {MONTAGE} ({r['evoked']['n_channels']} channels)",
        "",
        "| what | median | p10-p90 | calls |",
        "|---|---|---|---|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]
    if "raw" in r:
        raw = r["raw"]
        speed = raw["minutes"] * 60 / raw["wall_s"]
        lines += [
            "## Continuous data: `apply_brainforge_inverse_raw`",
            "",
            f"A RawArray of {raw['minutes']:g} min, {raw['n_channels']} channels at "
            f"{raw['sfreq']:g} Hz ({raw['data_mb']:.0f} MB of data, {raw['n_windows']} network "
            "windows), in a fresh process. Peak RSS increase: the peak resident memory during "
            f"the call ({raw['peak_rss_method']}) minus the RSS before it (data, model and "
            "forward already loaded); tracemalloc: peak of Python and NumPy allocations "
            "during a second call (torch's own buffers are not traced).",
            "",
            "| wall time | x real time | peak RSS increase | tracemalloc peak | RSS before | "
            "estimate (kernel form) | full source array if formed |",
            "|---|---|---|---|---|---|---|",
            f"| {raw['wall_s']:.1f} s | {speed:.0f}x | {raw['peak_rss_increase_mb']:.0f} MB | "
            f"{raw['tracemalloc_peak_mb']:.0f} MB | {raw['rss_before_mb']:.0f} MB | "
            f"{raw['stc_region_data_mb']:.0f} MB of region time courses | "
            f"{raw['stc_full_data_gb']:.1f} GB |",
            "",
        ]
    per_module = ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in fl["per_module"].items())
    params = ", ".join(f"{k} {v:,}" for k, v in fl["parameters_per_module"].items())
    lines += [
        "## Size and FLOPs per window",
        "",
        "| parameters | FLOPs per window | per module | per second of continuous data |",
        "|---|---|---|---|",
        f"| {fl['parameters']:,} ({params}) | {fl['total'] / 1e6:.1f} M | {per_module} | "
        f"{2 * fl['total'] / m['window_s'] / 1e6:.1f} M (half-overlapping windows) |",
        "",
        "FLOPs from `torch.utils.flop_counter.FlopCounterMode` on one window of "
        f"{r['evoked']['n_channels']} channels (2 per multiply-add; matrix products, "
        "convolutions and attention only: element-wise operations, normalisations and "
        "activations are not counted).",
        "",
    ]
    return "\n".join(lines)


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        default=None,
        help="Model file or registered weights name (default: the pretrained one).",
    )
    parser.add_argument(
        "--raw-minutes",
        type=float,
        default=10.0,
        help="Length of the RawArray (min); 0 skips it (default 10).",
    )
    parser.add_argument(
        "--n-calls",
        type=int,
        default=200,
        help="Timed network calls on one window (default 200).",
    )
    parser.add_argument(
        "--n-apply",
        type=int,
        default=20,
        help="Timed apply_brainforge_inverse / apply_inverse calls (default 20).",
    )
    parser.add_argument(
        "--batch", type=int, default=32, help="Windows per batch (default 32)."
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads (default 2)."
    )
    parser.add_argument("--out-dir", type=Path, default=OUT)
    parser.add_argument("--raw-worker", type=Path, default=None, help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    args = _parser().parse_args()
    if args.raw_worker is not None:
        raw_worker(args.raw_worker, args.model, args.raw_minutes, args.threads)
    else:
        if args.n_calls < 100:
            print("note: fewer than 100 timed network calls", file=sys.stderr)
        main(args)
