"""all_reduce bus bandwidth of kaiyuan.comm (shm and mpi backends) beside plain mpi4py Allreduce.

    python bench/comm.py [--quick] [--ranks 2,4,8] [--sizes 4,1024,1048576] [--json bench/results/comm.json]

For each rank count N and each kaiyuan backend (shm, mpi) one job is started with
`.venv/bin/mpiexec -n N python bench/comm.py --worker BACKEND`: its processes join a kaiyuan
process group on that backend AND hold MPI.COMM_WORLD, and time, in interleaved rounds on the same
float32 buffer, kaiyuan.comm.all_reduce (SUM, in place, algorithm chosen by the cost model) and
mpi4py's `Allreduce(MPI.IN_PLACE, buf, MPI.SUM)` (MPICH from the `mpich` wheel). A call's time is
the slowest rank's (max over ranks), median over rounds. Bus bandwidth is NCCL's definition:
busbw = size * 2(N-1)/N / time. Sizes 4 B to 256 MiB (`--quick`: up to 4 MiB, 2 and 4 ranks).
On a machine with fewer cores than ranks every contender is oversubscribed alike.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from common import RESULTS, machine, table, write_json  # noqa: E402

SIZES = [4 << (2 * i) for i in range(14)]  # 4 B, 16 B, ... 64 MiB (powers of 4)
SIZES = SIZES + [256 << 20]
QUICK_SIZES = [s for s in SIZES if s <= 4 << 20][::2]


def _rounds(nbytes: int, budget_s: float, first_s: float) -> int:
    return int(max(3, min(50, budget_s / max(2 * first_s, 1e-6))))


def worker(backend: str, sizes: list[int], budget_s: float) -> None:
    import numpy as np
    from mpi4py import MPI

    import kaiyuan.comm as dist

    comm = MPI.COMM_WORLD
    rank, n = comm.Get_rank(), comm.Get_size()
    if backend == "mpi":
        dist.init_process_group("mpi")
    else:
        name = comm.bcast(f"kybench-{secrets.token_hex(6)}" if rank == 0 else None)
        dist.init_process_group("shm", init_method=f"local://{name}", rank=rank, world_size=n)
    rows = []
    for nbytes in sizes:
        buf = np.zeros(max(1, nbytes // 4), np.float32)
        contenders = {"kaiyuan": lambda: dist.all_reduce(buf),
                      "mpi4py": lambda: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)}
        first = 0.0
        for fn in contenders.values():  # warm up, and size the number of rounds
            comm.Barrier()
            t0 = time.perf_counter()
            fn()
            first = max(first, time.perf_counter() - t0)
        rounds = comm.bcast(_rounds(nbytes, budget_s, first) if rank == 0 else None)
        times = {k: np.zeros(rounds) for k in contenders}
        for i in range(rounds):
            for k, fn in contenders.items():
                comm.Barrier()
                t0 = time.perf_counter()
                fn()
                times[k][i] = time.perf_counter() - t0
        row = {"nbytes": nbytes, "rounds": rounds}
        for k, t in times.items():
            slowest = np.empty_like(t)
            comm.Allreduce(t, slowest, op=MPI.MAX)
            row[f"{k}_s"] = float(np.median(slowest))
        rows.append(row)
    dist.destroy_process_group()
    if rank == 0:
        print("KY-BENCH " + json.dumps({"backend": backend, "ranks": n, "rows": rows}), flush=True)


def run_job(backend: str, ranks: int, sizes: list[int], budget_s: float, timeout: float) -> dict:
    venv = Path(sys.executable).parent
    mpiexec = venv / "mpiexec" if (venv / "mpiexec").exists() else "mpiexec"
    cmd = [str(mpiexec), "-n", str(ranks), sys.executable, __file__, "--worker", backend,
           "--sizes", ",".join(map(str, sizes)), "--budget", str(budget_s)]
    env = {k: v for k, v in os.environ.items() if k != "KAIYUAN_COMM_ALGO"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    for line in out.stdout.splitlines():
        if line.startswith("KY-BENCH "):
            return json.loads(line[len("KY-BENCH "):])
    raise RuntimeError(f"{backend} job on {ranks} ranks failed (exit {out.returncode}):\n{out.stderr[-3000:]}")


def size_text(nbytes: int) -> str:
    for unit, s in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= s:
            return f"{nbytes // s} {unit}"
    return f"{nbytes} B"


def busbw(nbytes: int, ranks: int, seconds: float) -> float:
    return nbytes * 2 * (ranks - 1) / ranks / seconds / 1e9


def report(jobs: list[dict]) -> str:
    lines = []
    for ranks in sorted({j["ranks"] for j in jobs}):
        by = {j["backend"]: {r["nbytes"]: r for r in j["rows"]} for j in jobs if j["ranks"] == ranks}
        sizes = sorted({s for rows in by.values() for s in rows})
        rows = []
        for s in sizes:
            cells = [size_text(s)]
            for backend in ("shm", "mpi"):
                r = by.get(backend, {}).get(s)
                cells += ([f"{busbw(s, ranks, r['kaiyuan_s']):.4f}", f"{busbw(s, ranks, r['mpi4py_s']):.4f}",
                           f"{r['kaiyuan_s'] * 1e6:.0f}", f"{r['mpi4py_s'] * 1e6:.0f}"] if r else ["-"] * 4)
            rows.append(cells)
        header = ["size", "shm busbw", "mpi4py", "shm us", "mpi4py us", "mpi busbw", "mpi4py", "mpi us", "mpi4py us"]
        lines.append(f"\nall_reduce on {ranks} ranks (bus bandwidth GB/s; mpi4py measured in the same job)\n"
                     + table(rows, header))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="sizes to 4 MiB, 2 and 4 ranks")
    p.add_argument("--ranks", help="comma-separated rank counts (default 2,4,8)")
    p.add_argument("--sizes", help="comma-separated sizes in bytes")
    p.add_argument("--backends", default="shm,mpi")
    p.add_argument("--budget", type=float, default=None, help="seconds of timing per size and job")
    p.add_argument("--json", default=str(RESULTS / "comm.json"))
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (QUICK_SIZES if args.quick else SIZES)
    budget = args.budget if args.budget is not None else (0.2 if args.quick else 1.0)
    if args.worker:
        worker(args.worker, sizes, budget)
        return
    ranks = [int(r) for r in args.ranks.split(",")] if args.ranks else ([2, 4] if args.quick else [2, 4, 8])
    jobs = []
    for n in ranks:
        for backend in args.backends.split(","):
            t0 = time.perf_counter()
            jobs.append(run_job(backend, n, sizes, budget, timeout=3600))
            print(f"{backend} on {n} ranks: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print(report(jobs))
    path = write_json(args.json, {"machine": machine(), "quick": args.quick, "sizes": sizes, "jobs": jobs,
                                  "busbw_definition": "size * 2(n-1)/n / time (NCCL)"})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
