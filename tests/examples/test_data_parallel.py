"""examples/data_parallel.py: data-parallel training matches single-process training (the example asserts it)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))

import data_parallel  # noqa: E402


@pytest.mark.parametrize("world", [1, 3, 4])
def test_threads_match_single_process(world):
    r = data_parallel.run(world_size=world, steps=25)
    assert r["max_rel_err"] < data_parallel.TOLERANCE
    assert len(r["losses"]) == 25 and r["losses"][-1] < r["losses"][0]


def test_check_catches_a_diverging_run():
    alone = data_parallel.train_alone(5)
    with pytest.raises(AssertionError):
        data_parallel.check([v * (1 + 1e-6) for v in alone], alone)


def test_script_under_kaiyuan_launch_with_shm():
    out = subprocess.run([sys.executable, "-m", "kaiyuan", "launch", "-n", "2", str(EXAMPLES / "data_parallel.py"),
                          "--backend", "shm", "--steps", "20"], capture_output=True, text=True, timeout=240,
                         env={**os.environ})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "data-parallel on 2 ranks (shm)" in out.stdout and "max relative difference" in out.stdout
