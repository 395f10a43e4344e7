"""`kaiyuan launch`: the rank environment, prefixed output, and failure propagation. The
scripts here do not import kaiyuan, so each rank starts in a few milliseconds."""

from __future__ import annotations

import subprocess
import sys
import time

from kaiyuan.tools.cli import main


def _launch(tmp_path, body: str, n: int, *args: str):
    script = tmp_path / "job.py"
    script.write_text(body)
    return subprocess.run([sys.executable, "-m", "kaiyuan", "launch", "-n", str(n), str(script), *args],
                          capture_output=True, text=True, timeout=60)


def test_environment_and_prefixed_output(tmp_path):
    p = _launch(tmp_path, "import os, sys\n"
                          "keys = ['RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'KAIYUAN_COMM_ID']\n"
                          "print(' '.join(os.environ[k] for k in keys), sys.argv[1:])\n", 3, "--lr", "0.1")
    assert p.returncode == 0, p.stderr
    lines = sorted(p.stdout.splitlines())
    assert len(lines) == 3
    ids = set()
    for r, line in enumerate(lines):
        tag, num, rank, world, local, addr, port, job, args = line.split(" ", 8)
        assert f"{tag} {num}" == f"[rank {r}]" and (rank, world, local) == (str(r), "3", str(r))
        assert addr == "127.0.0.1" and port.isdigit()
        assert args == "['--lr', '0.1']"
        ids.add(job)
    assert len(ids) == 1  # one rendezvous for the job


def test_failing_rank_stops_the_job(tmp_path):
    t = time.monotonic()
    p = _launch(tmp_path, "import os, sys, time\n"
                          "if os.environ['RANK'] == '1':\n"
                          "    print('bad input', file=sys.stderr); sys.exit(3)\n"
                          "time.sleep(60)\n", 3)
    assert p.returncode == 3
    assert "[rank 1] bad input" in p.stderr
    assert "kaiyuan launch: rank 1 exited with code 3; stopping rank(s) [0, 2]" in p.stderr
    assert time.monotonic() - t < 30  # the sleeping ranks were stopped


def test_killed_rank(tmp_path):
    p = _launch(tmp_path, "import os, signal, time\n"
                          "if os.environ['RANK'] == '0':\n"
                          "    os.kill(os.getpid(), signal.SIGKILL)\n"
                          "time.sleep(60)\n", 2)
    assert p.returncode == 128 + 9 and "rank 0 was killed by SIGKILL" in p.stderr


def test_bad_count(capsys):
    assert main(["launch", "-n", "0", "x.py"]) == 2
    assert "KY-E201" in capsys.readouterr().err
