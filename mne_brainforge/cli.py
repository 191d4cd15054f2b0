"""The ``brainforge`` command line."""

import argparse
import json
import sys
from pathlib import Path

import mne

from ._version import __version__


def _montage_info(montage):
    """An Info from a standard montage name or a montage file."""
    from .head import make_montage_info

    try:
        return make_montage_info(montage, 1000.0)
    except ValueError as err:
        raise SystemExit(f"--{err}") from None


def _cmd_head(args):
    from .head import fetch_fsaverage, make_fsaverage_forward

    subjects_dir = fetch_fsaverage(args.subjects_dir)
    geometry = subjects_dir / "fsaverage" / "bem" / "geometry.json"
    print(f"subjects_dir: {subjects_dir}")
    print(f"geometry: {json.dumps(json.loads(geometry.read_text()))}")
    if args.forward:
        info = _montage_info(args.montage)
        fwd = make_fsaverage_forward(info, conductivity=tuple(args.conductivity))
        mne.write_forward_solution(args.forward, fwd, overwrite=True)
        print(
            f"forward ({len(info.ch_names)} channels, {fwd['nsource']} sources): {args.forward}"
        )


def _cmd_demo(args):
    import matplotlib

    from .evaluation.demo import run_demo

    # the demo only writes PNGs: a GUI backend would need the display that the
    # 3D renderer may have started (Xvfb) to suit Qt as well, which it need not
    matplotlib.use("Agg")

    try:
        outputs = run_demo(
            args.out_dir,
            montage=args.montage,
            model=args.model,
            n_sources=args.n_sources,
            n_trials=args.n_trials,
            snr_db=args.snr,
            seed=args.seed,
            figures=not args.no_figures,
            head_figures=not args.no_head_figures,
            command="brainforge " + " ".join(sys.argv[1:]),
        )
    except ValueError as err:  # e.g. no pretrained weights registered, unknown montage
        raise SystemExit(f"brainforge demo: {err}") from None
    print(outputs["results"].read_text())
    print(f"Outputs in {args.out_dir}:")
    for key, path in outputs.items():
        print(f"  {key}: {path}")


def _cmd_simulate(args):
    import numpy as np

    from .head import cortex_normal, fetch_fsaverage, make_fsaverage_forward
    from .simulation import EEGSimulator, fetch_waveform_library
    from .viz import plot_simulation

    library = fetch_waveform_library(rebuild=args.rebuild, n_jobs=args.n_jobs)
    print(f"waveform library: {library}")
    if args.n_samples == 0:
        return
    args.out_dir.mkdir(parents=True, exist_ok=True)
    info = _montage_info(args.montage)
    fwd = cortex_normal(make_fsaverage_forward(info))
    sim = EEGSimulator(fwd, library, sfreq=info["sfreq"] / 4, duration=1.0)
    draws = [
        sim.draw(np.random.default_rng([args.seed, i])) for i in range(args.n_samples)
    ]
    np.savez_compressed(
        args.out_dir / "samples.npz",
        ch_names=np.array(sim.ch_names),
        ch_pos=sim.ch_pos,
        sfreq=sim.sfreq,
        eeg=np.stack([d["eeg"] for d in draws]),
        mask=np.stack([d["mask"] for d in draws]),
        target=np.stack([d["target"] for d in draws]),
        region_labels=sim.parcellation.labels,
        snr_db=np.array(
            [np.nan if d["snr_db"] is None else d["snr_db"] for d in draws]
        ),
        n_sources=np.array([len(d["patches"]) for d in draws]),
    )
    print(f"{args.n_samples} samples: {args.out_dir / 'samples.npz'}")
    sim_info = mne.pick_info(
        info, mne.pick_channels(info.ch_names, sim.ch_names, ordered=True)
    )
    plot_simulation(
        library,
        sim,
        draws[0],
        sim_info,
        fetch_fsaverage(),
        args.out_dir / "simulation.png",
    )
    print(f"figure: {args.out_dir / 'simulation.png'}")


def _apply_preset(args, parser):
    """Fill the options the command line left at their defaults from ``--preset``."""
    from .training.presets import PRESETS

    if args.preset is None:
        return
    if args.preset not in PRESETS:
        raise SystemExit(
            f"--preset must be one of {sorted(PRESETS)}, got {args.preset!r}."
        )
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) == parser.get_default(key):
            setattr(args, key, Path(value) if key == "checkpoint_dir" else value)


def _cmd_train(args):
    from .head import make_fsaverage_forward
    from .training import train_model

    _apply_preset(args, args.subparser)
    args.out.parent.mkdir(parents=True, exist_ok=True)  # before training, not after

    if args.forward is not None:
        fwd = mne.read_forward_solution(args.forward)
    else:
        fwd = make_fsaverage_forward(_montage_info(args.montage))
    simulator_kwargs = dict(
        n_channels_range=tuple(args.n_channels),
        max_sources=args.max_sources,
        snr_range=tuple(args.snr),
    )
    model = train_model(
        fwd,
        n_regions=args.n_regions,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        topomap_method=args.topomap_method,
        net_kwargs=dict(spatial=args.spatial, temporal=args.temporal),
        simulator_kwargs=simulator_kwargs,
        forward_weight=args.forward_weight,
        laplacian_weight=args.laplacian_weight,
        device=args.device,
        seed=args.seed,
        checkpoint_dir=args.checkpoint_dir,
        max_time=args.max_time,
        verbose="info",
    )
    model.config["training"]["command"] = "brainforge " + " ".join(sys.argv[1:])
    model.save(args.out, overwrite=True)
    print(f"{model}\nsaved to {args.out}")


def _cmd_benchmark(args):
    from .evaluation.benchmark import SIZES, run_benchmark
    from .inverse import CLASSICAL, MNEInverse

    methods = {}
    if args.model is not None:
        from .inverse import apply_brainforge_inverse
        from .nn import BrainForgeModel

        model = BrainForgeModel.load(args.model)
        methods["BrainForge"] = lambda evoked, fwd, cov: apply_brainforge_inverse(
            evoked, fwd, model, cov
        )
    methods.update(
        {name: MNEInverse(name) for name in CLASSICAL if name not in args.skip}
    )
    size = dict(SIZES["quick" if args.quick else "default"])
    if args.n_trials is not None:
        size["n_trials"] = args.n_trials
    records = run_benchmark(
        methods,
        size=size,
        out_dir=args.out_dir,
        seed=args.seed,
        montages=args.montages,
        command="brainforge " + " ".join(sys.argv[1:]),
    )
    print(f"{len(records)} results written to {args.out_dir}/results.md")


def build_parser():
    """Return the argument parser of the ``brainforge`` command."""
    parser = argparse.ArgumentParser(
        prog="brainforge",
        description="mne-brainforge: deep-learning EEG source imaging for MNE-Python.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--verbose", default="warning", help="MNE log level (e.g. info, warning)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    head = sub.add_parser(
        "head",
        help="Build (once) and check the offline fsaverage template head; "
        "optionally write a forward model.",
        description="Build the offline fsaverage template (cached) and print where "
        "it is; with --forward, also compute an EEG forward model for a montage.",
    )
    head.add_argument(
        "--subjects-dir",
        type=Path,
        default=None,
        help="Where to build fsaverage (default: the MNE data folder).",
    )
    head.add_argument(
        "--forward",
        type=Path,
        default=None,
        help="Write the forward model to this -fwd.fif file.",
    )
    head.add_argument(
        "--montage",
        default="biosemi64",
        help="Standard montage name or montage file (default biosemi64).",
    )
    head.add_argument(
        "--conductivity",
        type=float,
        nargs=3,
        default=(0.3, 0.006, 0.3),
        metavar=("BRAIN", "SKULL", "SCALP"),
        help="Conductivities in S/m (default 0.3 0.006 0.3).",
    )
    head.set_defaults(func=_cmd_head)

    demo = sub.add_parser(
        "demo",
        help="Run the main job end to end: BrainForge vs sLORETA/eLORETA/dSPM.",
        description="On the offline template head: a forward model for a montage, EEG "
        "simulated with known sources through another head model (no inverse crime) "
        "for 1, 2 and 3 simultaneous sources, BrainForge (the pretrained model or "
        "--model) next to sLORETA, eLORETA and dSPM; writes a metrics table "
        "(results.md, printed), results.json, cortex figures of each case and the "
        "forward model. No network access, no training.",
    )
    demo.add_argument("--out-dir", type=Path, default=Path("out/demo"))
    demo.add_argument(
        "--montage",
        default="biosemi64",
        help="Standard montage name or montage file (default biosemi64).",
    )
    demo.add_argument(
        "--model",
        default=None,
        help="BrainForge model file or registered weights name "
        "(default: the pretrained template model).",
    )
    demo.add_argument(
        "--n-sources",
        type=int,
        nargs="+",
        default=[1, 2, 3],
        help="The cases: numbers of simultaneous sources (default 1 2 3).",
    )
    demo.add_argument(
        "--n-trials", type=int, default=1, help="Data sets per case (default 1)."
    )
    demo.add_argument("--snr", type=float, default=10.0, help="SNR in dB (default 10).")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-figures", action="store_true", help="Skip all 3D figures.")
    demo.add_argument(
        "--no-head-figures",
        action="store_true",
        help="Skip the head-model alignment and sensitivity figures.",
    )
    demo.set_defaults(func=_cmd_demo)

    simulate = sub.add_parser(
        "simulate",
        help="Build/cache the TVB waveform library; write sample data and a figure.",
        description="Build (once) the forward-independent waveform library from TVB "
        "Jansen-Rit simulations, then draw a few training samples through the template "
        "forward model and write them (samples.npz) with a figure (simulation.png).",
    )
    simulate.add_argument("--out-dir", type=Path, default=Path("out/simulate"))
    simulate.add_argument(
        "--n-samples", type=int, default=16, help="0: only build the library."
    )
    simulate.add_argument("--montage", default="biosemi64")
    simulate.add_argument("--rebuild", action="store_true", help="Rebuild the library.")
    simulate.add_argument(
        "--n-jobs", type=int, default=2, help="Processes for TVB runs."
    )
    simulate.add_argument("--seed", type=int, default=0)
    simulate.set_defaults(func=_cmd_simulate)

    train = sub.add_parser(
        "train",
        help="Train a BrainForge model for a forward model.",
        description="Train the CNN-Transformer on simulated data generated on the fly "
        "through a forward model (a -fwd.fif file, or the template for a montage).",
    )
    train.add_argument(
        "--preset",
        default=None,
        help="Named settings of a released model (mne_brainforge.training."
        "presets); options given on the command line override them.",
    )
    train.add_argument("--forward", type=Path, help="EEG forward model (-fwd.fif).")
    train.add_argument(
        "--montage",
        default="biosemi64",
        help="Without --forward: the template forward for this montage.",
    )
    train.add_argument(
        "--out", type=Path, required=True, help="Model file to write (.pt)."
    )
    train.add_argument("--steps", type=int, default=3000)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--n-regions", type=int, default=500)
    train.add_argument(
        "--max-time", type=float, default=None, help="Stop after this many seconds."
    )
    train.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        help="Checkpoint here; a rerun resumes from it.",
    )
    train.add_argument(
        "--n-channels",
        type=int,
        nargs=2,
        default=(16, 128),
        metavar=("MIN", "MAX"),
        help="Range of random channel subsets (domain randomisation).",
    )
    train.add_argument("--max-sources", type=int, default=3)
    train.add_argument(
        "--snr", type=float, nargs=2, default=(0.0, 30.0), metavar=("LOW", "HIGH")
    )
    train.add_argument("--spatial", choices=("cnn", "mlp"), default="cnn")
    train.add_argument(
        "--temporal", choices=("transformer", "none"), default="transformer"
    )
    train.add_argument(
        "--topomap-method",
        default="rbf",
        choices=("bilinear", "bicubic", "rbf", "gaussian"),
    )
    train.add_argument("--forward-weight", type=float, default=0.0)
    train.add_argument("--laplacian-weight", type=float, default=0.0)
    train.add_argument("--device", default="auto")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=_cmd_train, subparser=train)

    bench = sub.add_parser(
        "benchmark",
        help="Benchmark inverse methods on simulated EEG (no inverse crime).",
        description="Run MNE, dSPM, sLORETA, eLORETA and LCMV side by side on the same "
        "simulated data (head-model mismatch, unseen waveforms); write a markdown "
        "table, JSON of every trial and PNG plots.",
    )
    bench.add_argument(
        "--quick", action="store_true", help="A small run (about a minute)."
    )
    bench.add_argument(
        "--out-dir", type=Path, default=Path("docs/benchmarks/classical")
    )
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument(
        "--model", type=Path, default=None, help="Also run this BrainForge model."
    )
    bench.add_argument(
        "--montages",
        type=int,
        nargs="+",
        default=None,
        help="Numbers of channels to run (among 16 32 64 128).",
    )
    bench.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help="Trials per condition (default: 2, quick: 1).",
    )
    bench.add_argument(
        "--skip", nargs="*", default=(), help="Classical methods to leave out."
    )
    bench.set_defaults(func=_cmd_benchmark)
    return parser


def main(argv=None):
    """Entry point of the ``brainforge`` command."""
    args = build_parser().parse_args(argv)
    mne.set_log_level(args.verbose)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
