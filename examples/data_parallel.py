"""Data-parallel training with kaiyuan.comm: a small MLP, gradients all-reduced every step.

Every rank holds the same model, trains on its own slice of each batch, and averages its
gradients with the others (one all_reduce with ReduceOp.AVG over all gradients packed in one
buffer: a single "bucket"), so every rank takes the same step as single-process training on
the whole batch. The script checks exactly that: rank 0 also trains the model alone on the full
batch and asserts that the two loss curves agree.

Tolerance: the model is float64; the two runs differ only in how the batch mean is summed (per
slice, then across ranks, versus all at once), a rounding difference of about 1e-16 relative per
step, so the curves must agree to 1e-9 relative after all steps.

    python examples/data_parallel.py                       # 4 ranks as threads (backend "local")
    kaiyuan launch -n 4 examples/data_parallel.py --backend shm
    mpiexec -n 4 python examples/data_parallel.py --backend mpi
"""

from __future__ import annotations

import argparse

import numpy as np

import kaiyuan.comm as dist

TOLERANCE = 1e-9
BATCH, D_IN, HIDDEN, LR = 96, 16, 32, 0.1


def data(steps: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic regression batches: targets from a fixed random "teacher" MLP plus noise."""
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(size=(D_IN, 8)), rng.normal(size=(8, 1))
    batches = []
    for _ in range(steps):
        x = rng.normal(size=(BATCH, D_IN))
        batches.append((x, np.tanh(x @ w1) @ w2 + 0.1 * rng.normal(size=(BATCH, 1))))
    return batches


def init_params(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"w1": rng.normal(size=(D_IN, HIDDEN)) / np.sqrt(D_IN), "b1": np.zeros(HIDDEN),
            "w2": rng.normal(size=(HIDDEN, 1)) / np.sqrt(HIDDEN), "b2": np.zeros(1)}


def loss_and_grads(p: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """Mean squared error of tanh-MLP and its gradients (backward written out by hand)."""
    h = np.tanh(x @ p["w1"] + p["b1"])
    err = h @ p["w2"] + p["b2"] - y
    n = len(x)
    d_out = 2 * err / n
    d_h = (d_out @ p["w2"].T) * (1 - h * h)
    grads = {"w1": x.T @ d_h, "b1": d_h.sum(0), "w2": h.T @ d_out, "b2": d_out.sum(0)}
    return float((err * err).mean()), grads


def train_alone(steps: int) -> list[float]:
    p, losses = init_params(), []
    for x, y in data(steps):
        loss, g = loss_and_grads(p, x, y)
        for k in p:
            p[k] -= LR * g[k]
        losses.append(loss)
    return losses


def train_rank(rank: int, world: int, steps: int) -> list[float]:
    """This rank's part of data-parallel training; returns the all-ranks mean loss per step."""
    p, losses = init_params(), []
    names = sorted(p)
    for x, y in data(steps):
        rows = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
        loss, g = loss_and_grads(p, x[rows], y[rows])
        bucket = np.concatenate([g[k].ravel() for k in names] + [np.array([loss])])
        dist.all_reduce(bucket, op=dist.ReduceOp.AVG)
        offset = 0
        for k in names:
            p[k] -= LR * bucket[offset:offset + p[k].size].reshape(p[k].shape)
            offset += p[k].size
        losses.append(float(bucket[-1]))
    return losses


def check(parallel: list[float], alone: list[float]) -> float:
    err = max(abs(a - b) / abs(b) for a, b in zip(parallel, alone))
    assert err < TOLERANCE, f"data-parallel loss differs from single-process loss by {err:.2e} (relative)"
    assert parallel[-1] < 0.5 * parallel[0], "training did not reduce the loss"
    return err


def run(world_size: int = 4, steps: int = 40) -> dict:
    """Train on `world_size` thread ranks (backend "local") and compare with single-process training."""
    if BATCH % world_size:
        raise ValueError(f"world_size must divide the batch of {BATCH}")
    per_rank = dist.spawn_threads(train_rank, world_size, args=(world_size, steps))
    assert all(r == per_rank[0] for r in per_rank), "ranks disagree about the loss"
    alone = train_alone(steps)
    return {"losses": per_rank[0], "alone": alone, "max_rel_err": check(per_rank[0], alone)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="local", choices=["local", "shm", "mpi"])
    ap.add_argument("--world-size", type=int, default=4, help="ranks (backend local only)")
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    if args.backend == "local":
        r = run(args.world_size, args.steps)
        world, losses, err = args.world_size, r["losses"], r["max_rel_err"]
    else:  # one process per rank, started by `kaiyuan launch` or mpiexec
        dist.init_process_group(args.backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        losses = train_rank(rank, world, args.steps)
        dist.destroy_process_group()
        if rank != 0:
            return
        err = check(losses, train_alone(args.steps))
    print(f"data-parallel on {world} ranks ({args.backend}): loss {losses[0]:.4f} -> {losses[-1]:.4f} "
          f"in {args.steps} steps; max relative difference from single-process training {err:.1e}")


if __name__ == "__main__":
    main()
