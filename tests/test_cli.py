"""The brainforge command line: one-line errors, shared options, presets, defaults."""

import pytest

from mne_brainforge import cli
from mne_brainforge.head.template import DEFAULT_CONDUCTIVITY
from mne_brainforge.training import train_model, train_prior


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["head", "--conductivity", "-1", "0.006", "0.3"],
            "--conductivity: must be > 0",
        ),
        (["train", "--forward", "missing.fif", "--out", "x.pt"], "no such file"),
        (["benchmark", "--montages", "17"], "invalid choice: 17"),
        (["head", "--verbose", "loud"], "--verbose: must be one of debug"),
        (["simulate", "--n-samples", "-5"], "--n-samples: must be >= 0"),
        (["train", "--out", "x.pt", "--steps", "0"], "--steps: must be > 0"),
        (["train", "--out", "x.pt", "--preset", "nope"], "invalid choice: 'nope'"),
        (["train-prior", "--out", "x.pt", "--nproc", "0"], "--nproc: must be > 0"),
        (["train-prior", "--out", "x.pt", "--init", "no.pt"], "no such file"),
    ],
)
def test_user_errors_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_library_errors_are_one_line(tmp_path, monkeypatch, capsys):
    """A ValueError of the library becomes one line; --debug shows the traceback."""
    import mne_brainforge.head

    def boom(*args, **kwargs):
        raise ValueError("first line\nsecond line")

    monkeypatch.setattr(mne_brainforge.head, "fetch_fsaverage", boom)
    with pytest.raises(SystemExit, match="^brainforge head: error: first line"):
        cli.main(["head"])
    with pytest.raises(ValueError, match="second line"):
        cli.main(["head", "--debug"])


def test_defaults_come_from_the_library():
    parser = cli.build_parser()
    head = parser.parse_args(["head"])
    assert tuple(head.conductivity) == DEFAULT_CONDUCTIVITY
    train = parser.parse_args(["train", "--out", "x.pt"])
    for name in ("steps", "batch_size", "lr", "n_regions", "topomap_method", "device"):
        assert getattr(train, name) == cli._default(train_model, name)
    prior = parser.parse_args(["train-prior", "--out", "x.pt", "--nproc", "2"])
    assert prior.nproc == 2 and prior.checkpoint is None
    for name in ("steps", "batch_size", "lr", "n_regions", "accumulate", "max_time"):
        assert getattr(prior, name) == cli._default(train_prior, name)
    bench = parser.parse_args(["benchmark"])
    assert str(bench.out_dir) == "brainforge-benchmark"  # not inside docs/
    for sub in ("demo", "simulate", "benchmark"):  # the shared parent options
        args = parser.parse_args([sub, "--verbose", "INFO", "--seed", "3"])
        assert (args.verbose, args.debug, args.seed) == ("info", False, 3)


def test_preset_fills_only_what_is_not_given(tmp_path):
    """A preset value equal to the default is still overridden by a given option."""
    argv = ["train", "--out", str(tmp_path / "m.pt"), "--preset", "biosemi64-20min"]
    argv += ["--steps", "3000", "--seed", "0"]  # 3000: train_model's own default
    args = cli.build_parser().parse_args(argv)
    args.argv = argv
    cli._apply_preset(args, args.subparser)
    assert args.steps == 3000  # given: kept although it equals the default
    assert args.max_time == 1200.0 and args.montage == "biosemi64"  # from the preset
    assert tuple(args.n_channels) == (48, 64)


def test_command_recorded_from_argv(monkeypatch, tmp_path):
    import mne_brainforge.evaluation.benchmark as benchmark

    seen = {}
    monkeypatch.setattr(
        benchmark, "run_benchmark", lambda scenario, **kw: seen.update(kw) or []
    )
    argv = [
        "benchmark",
        "--quick",
        "--out-dir",
        str(tmp_path / "a b"),
        "--skip",
        "LCMV",
    ]
    assert cli.main(argv) == 0
    assert (
        seen["command"]
        == f"brainforge benchmark --quick --out-dir '{tmp_path / 'a b'}' --skip LCMV"
    )


def test_demo_script_command_parses():
    """tools/demo.sh (the README's main command) calls the CLI with valid options."""
    from pathlib import Path

    line = next(
        line
        for line in (Path(__file__).parents[1] / "tools" / "demo.sh")
        .read_text()
        .split("\n")
        if line.startswith("exec ")
    )
    argv = line.split('bin/brainforge" ', 1)[1].replace('"${1:-out/demo}"', "out/demo")
    args = cli.build_parser().parse_args(argv.split())
    assert args.command == "demo" and str(args.out_dir) == "out/demo"
