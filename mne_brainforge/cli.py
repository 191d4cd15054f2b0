"""The ``brainforge`` command line."""

import argparse
import inspect
import json
import os
import shlex
import sys
from pathlib import Path

import mne

from ._version import __version__

#: MNE's log levels, for ``--verbose``
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
#: Errors of a user's input that print as one line (``--debug``: the traceback)
_USER_ERRORS = (ValueError, TypeError, OSError, RuntimeError, KeyError)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (the usage is in --help)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _default(func, name):
    """The default of ``func``'s parameter ``name``: the CLI repeats none."""
    return inspect.signature(func).parameters[name].default


def _number(kind, minimum, strict):
    """An argparse type: a ``kind`` (int/float) ``>= minimum`` (``>`` if strict)."""
    bound = f"{'>' if strict else '>='} {minimum:g}"

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'} {bound}, "
                f"got {text!r}"
            ) from None
        if not (value > minimum if strict else value >= minimum) or value != value:
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


_positive_int = _number(int, 0, strict=True)
_nonnegative_int = _number(int, 0, strict=False)
_positive_float = _number(float, 0, strict=True)


def _device(text):
    """An argparse type: a torch device this machine has."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"expected a torch device such as cpu, cuda or cuda:1, got {text!r}"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("this machine has no CUDA device")
    return device


def _existing_file(text):
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return path


def _log_level(text):
    if text.lower() not in _LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(_LOG_LEVELS)}, got {text!r}"
        )
    return text.lower()


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
            real_data=not args.no_real_data,
            command=args.command_line,
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


def _given(parser, argv):
    """Destinations of the options of ``parser`` that ``argv`` sets."""
    given = set()
    for action in parser._actions:
        for opt in action.option_strings:
            if any(a == opt or a.startswith(opt + "=") for a in argv):
                given.add(action.dest)
    return given


def _apply_preset(args, parser):
    """Fill the options the command line did not give from ``--preset``."""
    from .training.presets import PRESETS

    if args.preset is None:
        return
    if args.preset not in PRESETS:
        raise SystemExit(
            f"--preset must be one of {sorted(PRESETS)}, got {args.preset!r}."
        )
    given = _given(parser, args.argv)
    for key, value in PRESETS[args.preset].items():
        if key not in given:
            setattr(args, key, Path(value) if key == "checkpoint_dir" else value)


def _save_model(model, args):
    """Write a trained model to ``--out``, with the command that trained it."""
    model.config["training"]["command"] = args.command_line
    model.save(args.out, overwrite=True)
    print(f"{model}\nsaved to {args.out}")


def _cmd_train(args):
    from .head import make_fsaverage_forward
    from .training import train_model

    _apply_preset(args, args.subparser)
    args.out.parent.mkdir(parents=True, exist_ok=True)  # before training, not after

    if args.forward is not None:
        fwd = mne.read_forward_solution(args.forward)
    else:
        fwd = make_fsaverage_forward(_montage_info(args.montage))
    simulator_kwargs = {  # the simulator's defaults for the options not given
        key: tuple(value) if isinstance(value, (list, tuple)) else value
        for key, value in dict(
            n_channels_range=args.n_channels,
            max_sources=args.max_sources,
            snr_range=args.snr,
        ).items()
        if value is not None
    }
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
    _save_model(model, args)


def _cmd_train_prior(args):
    import torch

    from .head import make_head_model_family
    from .nn import BrainForgeModel
    from .simulation import BatchedEEGGenerator, fetch_waveform_bank
    from .training import train_prior
    from .training.prior import is_main_process

    args.out.parent.mkdir(parents=True, exist_ok=True)  # before training, not after
    init = None if args.init is None else BrainForgeModel.load(args.init)
    device = args.device
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))  # one GPU a rank
    generator = BatchedEEGGenerator(
        make_head_model_family(), fetch_waveform_bank(), device=device
    )
    model = train_prior(
        generator,
        init=init,
        n_regions=args.n_regions,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        checkpoint=args.checkpoint,
        max_time=args.max_time,
        nproc=args.nproc,
        accumulate=args.accumulate,
        objective=args.objective,
        n_iter=args.n_iter,
        verbose="info",
    )
    if is_main_process():  # under torchrun every rank holds the same model
        _save_model(model, args)


def _cmd_benchmark(args):
    from .evaluation.benchmark import run_benchmark
    from .evaluation.methods import METHODS

    methods = [m for m in METHODS if m not in args.skip]
    records = run_benchmark(
        "quick" if args.quick else "default",
        methods=methods,
        model=args.model,
        out_dir=args.out_dir,
        seed=args.seed,
        montages=args.montages,
        n_trials=args.n_trials,
        figures=not args.no_figures,
        command=args.command_line,
        max_time=args.max_time,
    )
    print(f"{len(records)} results written to {args.out_dir}/results.md")


def _parents():
    """Parent parsers of the options several commands share."""
    from .evaluation.demo import run_demo
    from .head.montage import BIOSEMI_BY_COUNT

    common = _Parser(add_help=False, allow_abbrev=False)
    common.add_argument(
        "--verbose",
        type=_log_level,
        default="warning",
        help=f"MNE log level ({', '.join(_LOG_LEVELS)}; default warning).",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        help="Show the full traceback of an error instead of one line.",
    )
    seed = _Parser(add_help=False, allow_abbrev=False)
    seed.add_argument(
        "--seed", type=_nonnegative_int, default=0, help="Random seed (default 0)."
    )
    montage = _Parser(add_help=False, allow_abbrev=False)
    default_montage = _default(run_demo, "montage")
    montage.add_argument(
        "--montage",
        default=default_montage,
        help="Standard montage name, montage file or channel count "
        f"({', '.join(map(str, BIOSEMI_BY_COUNT))}; default {default_montage}).",
    )
    return common, seed, montage


def _out_dir(default):
    parser = _Parser(add_help=False, allow_abbrev=False)
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path(default),
        help=f"Output folder (default ./{default}).",
    )
    return parser


def build_parser():
    """Return the argument parser of the ``brainforge`` command."""
    from .evaluation.demo import run_demo
    from .evaluation.methods import METHODS
    from .evaluation.runner import SCENARIOS
    from .head.montage import BIOSEMI_BY_COUNT
    from .head.template import DEFAULT_CONDUCTIVITY
    from .simulation.library import fetch_waveform_library
    from .training import train_model, train_prior
    from .training.presets import PRESETS
    from .training.prior import OBJECTIVES

    common, seed, montage = _parents()
    parser = _Parser(
        prog="brainforge",
        description="mne-brainforge: deep-learning EEG source imaging for MNE-Python.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, parents, **kwargs):
        return sub.add_parser(
            name, parents=[common, *parents], allow_abbrev=False, **kwargs
        )

    head = add(
        "head",
        [montage],
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
        "--conductivity",
        type=_positive_float,
        nargs=3,
        default=DEFAULT_CONDUCTIVITY,
        metavar=("BRAIN", "SKULL", "SCALP"),
        help="Conductivities in S/m (default {} {} {}).".format(*DEFAULT_CONDUCTIVITY),
    )
    head.set_defaults(func=_cmd_head)

    demo = add(
        "demo",
        [montage, seed, _out_dir("brainforge-demo")],
        help="Run the main job end to end: simulated and real EEG, BrainForge vs "
        "the sparse and classical methods.",
        description="On the offline template head: EEG simulated with known sources "
        "by a generator independent of training, through a head model the methods "
        "never get, for 1, 2 and 3 simultaneous sources, and the real median-nerve "
        "SEP that spharapy ships; BrainForge (the pretrained model or --model), "
        "sparse Bayes, MxNE, gamma-MAP, sLORETA, eLORETA and dSPM; writes a metrics "
        "table (results.md, printed), results.json and cortex figures. No network "
        "access, no training.",
    )
    demo.add_argument(
        "--model",
        default=None,
        help="BrainForge model file or registered weights name "
        "(default: the pretrained template model).",
    )
    n_sources = list(_default(run_demo, "n_sources"))
    demo.add_argument(
        "--n-sources",
        type=_positive_int,
        nargs="+",
        default=n_sources,
        help="The cases: numbers of simultaneous sources (default "
        f"{' '.join(map(str, n_sources))}).",
    )
    n_trials = _default(run_demo, "n_trials")
    demo.add_argument(
        "--n-trials",
        type=_positive_int,
        default=n_trials,
        help=f"Data sets per case (default {n_trials}).",
    )
    snr = _default(run_demo, "snr_db")
    demo.add_argument(
        "--snr", type=float, default=snr, help=f"SNR in dB (default {snr:g})."
    )
    demo.add_argument("--no-figures", action="store_true", help="Skip all 3D figures.")
    demo.add_argument(
        "--no-real-data",
        action="store_true",
        help="Skip the real SEP (spharapy's 256-channel median-nerve recording).",
    )
    demo.set_defaults(func=_cmd_demo)

    simulate = add(
        "simulate",
        [montage, seed, _out_dir("brainforge-simulate")],
        help="Build/cache the TVB waveform library; write sample data and a figure.",
        description="Build (once) the forward-independent waveform library from TVB "
        "Jansen-Rit simulations, then draw a few training samples through the template "
        "forward model and write them (samples.npz) with a figure (simulation.png).",
    )
    simulate.add_argument(
        "--n-samples",
        type=_nonnegative_int,
        default=16,
        help="Samples to draw (default 16; 0: only build the library).",
    )
    simulate.add_argument("--rebuild", action="store_true", help="Rebuild the library.")
    n_jobs = _default(fetch_waveform_library, "n_jobs")
    simulate.add_argument(
        "--n-jobs",
        type=_positive_int,
        default=n_jobs,
        help=f"Processes for TVB runs (default {n_jobs}).",
    )
    simulate.set_defaults(func=_cmd_simulate)

    train = add(
        "train",
        [montage, seed],
        help="Train a BrainForge model for a forward model.",
        description="Train the CNN-Transformer on simulated data generated on the fly "
        "through a forward model (a -fwd.fif file, or the template for --montage). "
        "Defaults are those of mne_brainforge.training.train_model.",
    )
    train.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="Named settings of a released model (mne_brainforge.training."
        "presets); options given on the command line override them.",
    )
    train.add_argument(
        "--forward", type=_existing_file, help="EEG forward model (-fwd.fif)."
    )
    train.add_argument(
        "--out", type=Path, required=True, help="Model file to write (.pt)."
    )

    def train_option(flag, kind, name=None, **kwargs):
        name = name or flag.lstrip("-").replace("-", "_")
        train.add_argument(
            flag, type=kind, default=_default(train_model, name), **kwargs
        )

    train_option("--steps", _positive_int)
    train_option("--batch-size", _positive_int)
    train_option("--lr", _positive_float)
    train_option("--n-regions", _positive_int)
    train_option("--max-time", _positive_float, help="Stop after this many seconds.")
    train.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        help="Checkpoint here; a rerun resumes from it.",
    )
    train.add_argument(
        "--n-channels",
        type=_positive_int,
        nargs=2,
        default=None,
        metavar=("MIN", "MAX"),
        help="Range of random channel subsets (domain randomisation; default: "
        "the simulator's).",
    )
    train.add_argument("--max-sources", type=_positive_int, default=None)
    train.add_argument(
        "--snr", type=float, nargs=2, default=None, metavar=("LOW", "HIGH")
    )
    train.add_argument("--spatial", choices=("cnn", "mlp"), default="cnn")
    train.add_argument(
        "--temporal", choices=("transformer", "none"), default="transformer"
    )
    from .nn.topomap import METHODS as TOPOMAP_METHODS

    train.add_argument(
        "--topomap-method",
        default=_default(train_model, "topomap_method"),
        choices=TOPOMAP_METHODS,
    )
    train_option("--forward-weight", _number(float, 0, strict=False))
    train_option("--laplacian-weight", _number(float, 0, strict=False))
    train_option("--device", str)
    train.set_defaults(func=_cmd_train, subparser=train)

    prior = add(
        "train-prior",
        [seed],
        help="Train the network for the prior on the batched engine (DDP with "
        "--nproc).",
        description="Train (or fine-tune, --init) the network that sets the "
        "sparse Bayesian solve's prior, on batches drawn by the batched engine "
        "through the template head-model family (built and cached on first use), "
        "with every cap, dropout, reference and noise family. --nproc N runs N "
        "DistributedDataParallel processes on the CPU (gloo); for several GPUs or "
        "machines, start it with torchrun --nproc-per-node N and --device cuda "
        "(NCCL, one GPU per rank). Defaults are those of "
        "mne_brainforge.training.train_prior.",
    )
    prior.add_argument(
        "--device",
        type=_device,
        default="cpu",
        help="Where the batches are drawn and the network trains (cpu, cuda, "
        "cuda:1; under torchrun, cuda means the rank's own GPU).",
    )
    prior.add_argument(
        "--out", type=Path, required=True, help="Model file to write (.pt)."
    )
    prior.add_argument(
        "--init",
        type=_existing_file,
        default=None,
        help="Start from this model file (fine-tuning).",
    )
    prior.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="Training state file; a rerun resumes from it.",
    )
    for flag, kind in (
        ("--steps", _positive_int),
        ("--batch-size", _positive_int),
        ("--lr", _positive_float),
        ("--n-regions", _positive_int),
        ("--max-time", _positive_float),
        ("--nproc", _positive_int),
        ("--accumulate", _positive_int),
        ("--n-iter", _positive_int),
    ):
        name = flag.lstrip("-").replace("-", "_")
        prior.add_argument(flag, type=kind, default=_default(train_prior, name))
    prior.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default=_default(train_prior, "objective"),
        help="prior: region energy shares (the prior trained on its own); "
        "unrolled: through --n-iter differentiable sparse Bayesian iterations, a "
        "loss on the vertex-level estimate.",
    )
    prior.set_defaults(func=_cmd_train_prior)

    bench = add(
        "benchmark",
        [seed, _out_dir("brainforge-benchmark")],
        help="Benchmark v2: every method on test data independent of training.",
        description="Run BrainForge, sparse Bayes, MxNE, gamma-MAP, sLORETA, eLORETA, "
        "dSPM, MNE and LCMV side by side on the same test data (own source model, "
        "waveforms and noise; truth heads the methods never get); write a markdown "
        "report, JSON of every case and PNG plots.",
    )
    bench.add_argument(
        "--quick", action="store_true", help="A small run (a few minutes)."
    )
    bench.add_argument(
        "--model",
        type=_existing_file,
        default=None,
        help="BrainForge model file (default: the pretrained template model).",
    )
    counts = tuple(BIOSEMI_BY_COUNT)
    default_montages = SCENARIOS["default"].montages
    bench.add_argument(
        "--montages",
        type=int,
        nargs="+",
        choices=counts,
        default=None,
        metavar="N",
        help=f"BioSemi caps by channel count (among {' '.join(map(str, counts))}; "
        f"default {' '.join(default_montages)}).",
    )
    bench.add_argument(
        "--n-trials",
        type=_positive_int,
        default=None,
        help="Cases per cell (default {}, quick: {}).".format(
            SCENARIOS["default"].n_trials, SCENARIOS["quick"].n_trials
        ),
    )
    bench.add_argument(
        "--skip",
        nargs="*",
        default=(),
        choices=METHODS,
        metavar="METHOD",
        help=f"Methods to leave out (of {', '.join(METHODS)}).",
    )
    bench.add_argument(
        "--no-figures", action="store_true", help="Skip the cortex figures."
    )
    bench.add_argument(
        "--max-time",
        type=_number(float, 0, strict=False),
        default=None,
        metavar="SECONDS",
        help="Start no new case after this long; report the cases so far as "
        "partial (0: report what the checkpoint holds). A rerun resumes.",
    )
    bench.set_defaults(func=_cmd_benchmark)
    return parser


def main(argv=None):
    """Entry point of the ``brainforge`` command.

    Parameters
    ----------
    argv : list of str | None
        The arguments (default: ``sys.argv[1:]``); recorded in the outputs as
        the command that made them.

    Returns
    -------
    status : int
        0 on success. A user error exits with its message on one line
        (``--debug``: with the traceback).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    args.command_line = shlex.join(["brainforge", *argv])
    mne.set_log_level(args.verbose)
    try:
        args.func(args)
    except _USER_ERRORS as err:
        if args.debug:
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        raise SystemExit(
            f"brainforge {args.command}: error: {message} (--debug for the traceback)"
        ) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
