"""Calibrate the cost model's shm transport on this host, and check the model against it.

`calibrate_shm()` starts all_reduce jobs on 2 and 4 ranks (`kaiyuan launch`, backend shm), times
each runtime algorithm at a few sizes (the slowest rank's time, median of the repetitions),
measures gamma directly (numpy's in-place add, which is how the runtime folds), fits alpha and
beta by least squares on relative error over the jobs with no more ranks than the host has cores
(the model has no term for ranks time-sharing a core), stores them (`cost.save_calibration`), and returns the
predicted-versus-measured table, before and after calibration. The cost model is linear in
(alpha, beta, gamma) on one host, so each measurement's coefficients come from pricing its
schedule with unit transports.

Run as a module, it is the worker of one job: `python -m kaiyuan.comm.simulate.calibrate --sizes ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ALGOS = ("ring", "halving_doubling", "tree", "direct")
SIZES = (4 << 10, 256 << 10, 4 << 20, 16 << 20)
WORLD_SIZES = (2, 4)


def _reps(nbytes: int) -> int:
    return 30 if nbytes <= 64 << 10 else 10 if nbytes <= 1 << 20 else 5


def worker(sizes, algos) -> None:
    """One rank: time all_reduce of float32 arrays per algorithm and size; rank 0 prints JSON."""
    import kaiyuan.comm as dist

    dist.init_process_group("shm")
    rows = []
    for algo in algos:
        os.environ["KAIYUAN_COMM_ALGO"] = f"all_reduce:{algo}"
        for nbytes in sizes:
            x = np.ones(nbytes // 4, np.float32)
            dist.all_reduce(x)  # warm up (and check the algorithm runs)
            times = np.zeros(_reps(nbytes))
            for i in range(len(times)):
                dist.barrier()
                t0 = time.perf_counter()
                dist.all_reduce(x)
                times[i] = time.perf_counter() - t0
            dist.all_reduce(times, op=dist.ReduceOp.MAX)  # a collective ends when its slowest rank does
            rows.append({"algo": algo, "nbytes": nbytes, "seconds": float(np.median(times))})
    if dist.get_rank() == 0:
        print("KY-CALIBRATION " + json.dumps({"world_size": dist.get_world_size(), "rows": rows}), flush=True)
    dist.destroy_process_group()


def measure(world_size: int, sizes=SIZES, algos=ALGOS, timeout: float = 600) -> list[dict]:
    """Run one shm job of `world_size` ranks; its rows with world_size added."""
    cmd = [sys.executable, "-m", "kaiyuan", "launch", "-n", str(world_size), "--backend", "shm", "-m",
           "kaiyuan.comm.simulate.calibrate", "--sizes", ",".join(map(str, sizes)), "--algos", ",".join(algos)]
    env = {k: v for k, v in os.environ.items() if k != "KAIYUAN_COMM_ALGO"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    for line in out.stdout.splitlines():
        if "KY-CALIBRATION " in line:
            data = json.loads(line.split("KY-CALIBRATION ", 1)[1])
            return [dict(r, world_size=data["world_size"]) for r in data["rows"]]
    from ...runtime.errors import CommError

    raise CommError(f"calibration job on {world_size} ranks printed no result (exit {out.returncode})",
                    hint=(out.stderr or out.stdout)[-2000:])


def measure_gamma(nbytes: int = 8 << 20, reps: int = 10) -> float:
    """Seconds per byte of an in-place float32 add (the runtime's fold)."""
    a, b = np.ones(nbytes // 4, np.float32), np.ones(nbytes // 4, np.float32)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        np.add(a, b, out=a)
        best = min(best, time.perf_counter() - t0)
    return best / nbytes


def coefficients(row: dict, base) -> np.ndarray:
    """(alpha, beta, gamma) coefficients of a measurement under the cost model: its predicted time
    is their dot product with the transport's (alpha, beta, gamma)."""
    from dataclasses import replace

    from ..cost import Topology, predict

    out = []
    for unit in ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)):
        tp = replace(base, alpha=unit[0], beta=unit[1], gamma=unit[2])
        out.append(predict("all_reduce", row["algo"], row["nbytes"], Topology.local_host(row["world_size"], tp)))
    return np.array(out)


def fit(rows: list[dict], gamma: float, base) -> tuple[float, float]:
    """alpha, beta minimising the squared relative error of the predictions (gamma fixed)."""
    C = np.array([coefficients(r, base) for r in rows])
    t = np.array([r["seconds"] for r in rows])
    A = C[:, :2] / t[:, None]
    rhs = 1.0 - C[:, 2] * gamma / t
    (alpha, beta), *_ = np.linalg.lstsq(A, rhs, rcond=None)
    return max(float(alpha), 1e-7), max(float(beta), 1e-12)


def table(rows: list[dict]) -> str:
    head = f"{'ranks':>5}  {'algorithm':<16}  {'size':>9}  {'measured':>10}  {'default':>10}  {'calibrated':>10}  {'ratio':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        size = f"{r['nbytes'] >> 20} MiB" if r["nbytes"] >= 1 << 20 else f"{r['nbytes'] >> 10} KiB"
        lines.append(f"{r['world_size']:>5}  {r['algo']:<16}  {size:>9}  {r['seconds'] * 1e3:>7.3f} ms  "
                     f"{r['default'] * 1e3:>7.3f} ms  {r['predicted'] * 1e3:>7.3f} ms  {r['predicted'] / r['seconds']:>6.2f}")
    return "\n".join(lines)


def calibrate_shm(world_sizes=WORLD_SIZES, sizes=SIZES, algos=ALGOS, save: bool = True) -> dict:
    """Measure, fit, store; returns {"alpha", "beta", "gamma", "rows", "table"} (rows carry the
    measured seconds, the default model's and the calibrated model's predictions)."""
    from dataclasses import replace

    from ..cost import DEFAULTS, save_calibration

    base = DEFAULTS[("shm", "intra")]
    rows = [r for n in world_sizes for r in measure(n, sizes, algos)]
    gamma = measure_gamma()
    # The model has no CPU-contention term: fit on jobs with no more ranks than cores.
    cores = os.cpu_count() or 1
    alpha, beta = fit([r for r in rows if r["world_size"] <= cores] or rows, gamma, base)
    tuned = replace(base, alpha=alpha, beta=beta, gamma=gamma)
    for r in rows:
        c = coefficients(r, base)
        r["default"] = float(c @ [base.alpha, base.beta, base.gamma])
        r["predicted"] = float(c @ [tuned.alpha, tuned.beta, tuned.gamma])
    ratios = np.array([r["predicted"] / r["seconds"] for r in rows if r["world_size"] <= cores] or
                      [r["predicted"] / r["seconds"] for r in rows])
    report = {"alpha": alpha, "beta": beta, "gamma": gamma, "rows": rows,
              "ratio_median": float(np.median(ratios)), "ratio_min": float(ratios.min()),
              "ratio_max": float(ratios.max())}
    if save:
        report["stored"] = str(save_calibration("shm", "intra", alpha=alpha, beta=beta, gamma=gamma))
    report["table"] = (f"shm transport: alpha {alpha * 1e6:.1f} us, beta {1 / beta / 1e9:.2f} GB/s, "
                       f"gamma {1 / gamma / 1e9:.2f} GB/s\n" + table(rows)
                       + f"\npredicted/measured on jobs of at most {cores} ranks (this host's cores): median "
                         f"{report['ratio_median']:.2f}, range {report['ratio_min']:.2f}-{report['ratio_max']:.2f}")
    return report


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--algos", default=",".join(ALGOS))
    a = ap.parse_args()
    worker([int(s) for s in a.sizes.split(",")], a.algos.split(","))
