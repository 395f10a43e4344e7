"""`kaiyuan launch`: start an N-rank job on this host (torchrun's environment, shm rendezvous).

Each rank is `python script.py args...` (or `python -m module args...`) with RANK, WORLD_SIZE,
LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT (torchrun's names) and
KAIYUAN_COMM_ID, the shared-memory rendezvous name that init_process_group() picks up. Output
lines are forwarded with a "[rank r] " prefix. When a rank fails, the others are stopped
(SIGTERM, then SIGKILL after a grace period) and the launcher exits with that rank's code.
"""

from __future__ import annotations

import glob
import os
import random
import signal
import subprocess
import sys
import threading
import time

GRACE = 3.0


def rank_env(base: dict, rank: int, n: int, job_id: str, port: int, backend: str | None) -> dict:
    env = dict(base)
    env.update(RANK=str(rank), WORLD_SIZE=str(n), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(n), GROUP_RANK="0",
               ROLE_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), KAIYUAN_COMM_ID=job_id,
               PYTHONUNBUFFERED="1")
    if backend:
        env["KAIYUAN_COMM_BACKEND"] = backend
    return env


def _forward(stream, sink, prefix: str, lock: threading.Lock) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        with lock:
            sink.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
            sink.flush()
    stream.close()


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def launch(command: list[str], nprocs: int, *, backend: str | None = None, prefix_output: bool = True,
           out=None, err=None) -> int:
    """Run `command` (argv after the interpreter) as `nprocs` ranks; returns the job's exit code."""
    from .api import new_id
    from .transports.shm import DIR, prefix_for

    out, err = out or sys.stdout, err or sys.stderr
    job_id, port = new_id(), random.randint(20000, 60000)
    lock = threading.Lock()
    procs, threads = [], []
    for r in range(nprocs):
        p = subprocess.Popen([sys.executable, *command], env=rank_env(os.environ, r, nprocs, job_id, port, backend),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(p)
        tag = f"[rank {r}] " if prefix_output else ""
        for stream, sink in ((p.stdout, out), (p.stderr, err)):
            t = threading.Thread(target=_forward, args=(stream, sink, tag, lock), daemon=True)
            t.start()
            threads.append(t)
    code = 0
    try:
        code = _watch(procs, err, lock)
    except KeyboardInterrupt:
        _stop(procs, signal.SIGINT)
        code = 130
    finally:
        for t in threads:
            t.join(5)
        for path in glob.glob(f"{DIR}/{prefix_for(job_id)}-*"):  # left only if a rank died during init
            try:
                os.unlink(path)
            except OSError:
                pass
    return code


def _watch(procs, err, lock) -> int:
    while True:
        codes = [p.poll() for p in procs]
        failed = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            r, c = failed[0]
            others = [q for q, cc in enumerate(codes) if cc is None]
            with lock:
                err.write(f"kaiyuan launch: rank {r} {_describe(c)}"
                          + (f"; stopping rank(s) {others}\n" if others else "\n"))
                err.flush()
            _stop(procs, signal.SIGTERM)
            return c if c > 0 else 128 - c
        if all(c == 0 for c in codes):
            return 0
        time.sleep(0.02)


def _stop(procs, sig) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(sig)
    deadline = time.monotonic() + GRACE
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
