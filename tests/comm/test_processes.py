"""Process transports: shm under `kaiyuan launch`, mpi under mpiexec, and shm fault handling
with real processes (a rank that never arrives, a rank that dies)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kaiyuan.comm.api import new_id
from kaiyuan.comm.launch import rank_env

HERE = Path(__file__).resolve().parent
WORKER = str(HERE / "worker.py")
BIN = Path(sys.executable).parent


def _results(text: str) -> dict[int, dict]:
    rows = {}
    for line in text.splitlines():
        line = line.split("] ", 1)[-1] if line.startswith("[rank ") else line
        if line.startswith("{"):
            row = json.loads(line)
            rows[row["rank"]] = row
    return rows


def test_shm_matrix_under_launch():
    """Every collective and algorithm on 4 processes (1 MB for ring and direct), async, p2p,
    groups; and the job leaves nothing in /dev/shm."""
    before = _segments()
    p = subprocess.run([sys.executable, "-m", "kaiyuan", "launch", "-n", "4", WORKER, "matrix"],
                       capture_output=True, text=True, timeout=240)
    rows = _results(p.stdout)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert sorted(rows) == [0, 1, 2, 3] and all(r["ok"] and r["backend"] == "shm" for r in rows.values())
    assert len({r["checks"] for r in rows.values()}) == 1
    assert _segments() <= before


def _segments() -> set:
    return {f for f in os.listdir("/dev/shm") if f.startswith("ky-")} if os.path.isdir("/dev/shm") else set()


@pytest.mark.skipif(not (BIN / "mpiexec").exists(), reason="mpiexec (the mpich wheel) is not installed")
def test_mpi_subset_under_mpiexec(tmp_path):
    pytest.importorskip("mpi4py")
    p = subprocess.run([str(BIN / "mpiexec"), "-n", "3", sys.executable, WORKER, "subset"], capture_output=True,
                       text=True, timeout=240, env={**os.environ, "TEST_RESULT_DIR": str(tmp_path)})
    rows = {int(f.stem[4:]): json.loads(f.read_text()) for f in tmp_path.glob("rank*.json")}
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert sorted(rows) == [0, 1, 2] and all(r["ok"] and r["backend"] == "mpi" for r in rows.values())


def _job(suite: str, n: int, timeout: float) -> list[subprocess.Popen]:
    """n shm ranks started by hand with the launcher's environment (no launcher to stop them)."""
    job = new_id()
    env = {**os.environ, "TEST_TIMEOUT": str(timeout)}
    return [subprocess.Popen([sys.executable, WORKER, suite], env=rank_env(env, r, n, job, 29500, "shm"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(n)]


def test_shm_faults_name_the_rank():
    """3 ranks each: the last never arrives (others time out after 1 s naming it), or dies right
    after joining (others notice its process is gone long before their 60 s timeout)."""
    never, dies = _job("never", 3, 1.0), _job("dies", 3, 60.0)
    outs = {}
    for name, procs in (("never", never), ("dies", dies)):
        texts = [p.communicate(timeout=120) for p in procs]
        outs[name] = (_results("".join(t[0] for t in texts)), [p.returncode for p in procs], texts)
    rows, codes, texts = outs["never"]
    for r in (0, 1):
        assert rows[r]["code"] == "KY-E800" and rows[r]["ranks"] == [2] and rows[r]["reason"] == "timeout", texts
        assert "rank 2 never arrived" in rows[r]["message"]
    rows, codes, texts = outs["dies"]
    assert codes[2] == 3
    for r in (0, 1):
        assert rows[r]["code"] == "KY-E800" and rows[r]["reason"] == "dead", texts
        assert "rank 2" in rows[r]["message"] and rows[r]["seconds"] < 30
