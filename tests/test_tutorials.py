"""The tutorials run as plain scripts, with reduced sizes (BRAINFORGE_TUTORIAL_QUICK=1)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).parents[1] / "tutorials").glob("[0-9][0-9]_*.py"))


def test_tutorials_found():
    assert len(TUTORIALS) >= 4


@pytest.mark.slow
@pytest.mark.render
@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs(script, tmp_path, needs_3d):
    # needs_3d set DISPLAY (and the OpenGL fallback), which the script inherits
    # temporary files (the training tutorial's checkpoints) go to tmp_path too
    env = dict(
        os.environ,
        BRAINFORGE_TUTORIAL_QUICK="1",
        MPLBACKEND="Agg",
        TMPDIR=str(tmp_path),
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, (
        f"{script.name} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    )
