"""The tutorials run as plain scripts, with reduced sizes (BRAINFORGE_TUTORIAL_QUICK=1)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mne_brainforge.viz import ensure_3d_display

TUTORIALS = sorted((Path(__file__).parents[1] / "tutorials").glob("[0-9][0-9]_*.py"))


def test_tutorials_found():
    assert len(TUTORIALS) >= 4


@pytest.mark.slow
@pytest.mark.render
@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs(script, tmp_path):
    if not os.environ.get("DISPLAY") and os.environ.get("BRAINFORGE_REQUIRE_3D") != "1":
        pytest.skip("no display (the test command runs this under Xvfb)")
    ensure_3d_display()  # sets DISPLAY, which the script inherits
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
