"""Checks shared by the comm tests: run inside each rank (a thread, a process under
`kaiyuan launch`, or an MPI rank). Every result is compared bitwise with a numpy reference that
folds the ranks' values in rank order — the order kaiyuan.comm promises for every algorithm."""

from __future__ import annotations

import functools

import ml_dtypes
import numpy as np

ALGOS = ("ring", "halving_doubling", "tree", "direct", "hierarchical")
DTYPES = (np.float32, np.float16, ml_dtypes.bfloat16, np.int32, np.uint8, np.float64, np.int64, np.bool_)
UFUNCS = {"SUM": np.add, "AVG": np.add, "PROD": np.multiply, "MAX": np.maximum, "MIN": np.minimum}


def values(seed: int, n: int, dtype) -> np.ndarray:
    """Rank data, a fresh copy (callers reduce into it); generated once per (seed, n, dtype)."""
    return _values(seed, n, np.dtype(dtype)).copy()


@functools.lru_cache(maxsize=4096)
def _values(seed: int, n: int, dtype: np.dtype) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(n) < 0.5
    if dtype.kind in "iu":
        return rng.integers(0 if dtype.kind == "u" else -20, 20, n).astype(dtype)
    return (rng.standard_normal(n) * 2).astype(dtype)


def reference(seeds: tuple, n: int, dtype, op: str) -> np.ndarray:
    return _reference(tuple(seeds), n, np.dtype(dtype), op)


@functools.lru_cache(maxsize=1024)
def _reference(seeds: tuple, n: int, dtype: np.dtype, op: str) -> np.ndarray:
    return fold([_values(s, n, dtype) for s in seeds], op)


def fold(parts: list, op: str) -> np.ndarray:
    """op(...op(op(p0, p1), p2)..., p_{n-1}), in the parts' dtype; AVG then divides."""
    acc = parts[0].copy()
    for p in parts[1:]:
        if acc.dtype == np.bool_:
            acc = (np.logical_and if op == "PROD" else np.logical_or)(acc, p) if op in ("SUM", "PROD") \
                else UFUNCS[op](acc, p)
        else:
            acc = UFUNCS[op](acc, p).astype(acc.dtype)
    if op == "AVG" and len(parts) > 1:
        if acc.dtype.kind in "iu":
            acc = (np.sign(acc) * (np.abs(acc) // len(parts))).astype(acc.dtype)
        else:
            acc = (acc / acc.dtype.type(len(parts))).astype(acc.dtype)
    return acc


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def check_collectives(dist, rank: int, size: int, sizes, dtypes, ops=("SUM",), group=None, ranks=None) -> int:
    """Every collective on every (size, dtype); returns the number of checks made."""
    ranks = list(range(size)) if ranks is None else ranks  # global ranks of the group, in order
    me = ranks.index(rank)
    root = ranks[-1] if size > 1 else ranks[0]
    done = 0
    for n in sizes:
        for dt in dtypes:
            seed = lambda r, k=0: 1000 * k + 7 * r + n  # noqa: E731
            for op in ops:
                if op == "AVG" and np.dtype(dt) == np.bool_:
                    continue
                want = reference([seed(r) for r in range(size)], n, dt, op)
                x = values(seed(me), n, dt)
                dist.all_reduce(x, op=getattr(dist.ReduceOp, op), group=group)
                assert same(x, want), f"all_reduce {op} n={n} {np.dtype(dt)} rank {me}"
                y = values(seed(me), n, dt)
                dist.reduce(y, dst=root, op=getattr(dist.ReduceOp, op), group=group)
                assert same(y, want if rank == root else values(seed(me), n, dt)), f"reduce {op} n={n} {dt}"
                outs = np.empty(n, dt)
                ins = [values(seed(me, k + 1), n, dt) for k in range(size)]
                dist.reduce_scatter(outs, ins, op=getattr(dist.ReduceOp, op), group=group)
                assert same(outs, reference([seed(r, me + 1) for r in range(size)], n, dt, op)), \
                    f"reduce_scatter {op} n={n} {dt}"
                done += 3
            gathered = [np.empty(n, dt) for _ in range(size)]
            dist.all_gather(gathered, values(seed(me), n, dt), group=group)
            assert all(same(gathered[r], values(seed(r), n, dt)) for r in range(size)), f"all_gather n={n} {dt}"
            b = values(seed(me), n, dt) if rank == root else np.zeros(n, dt)
            dist.broadcast(b, src=root, group=group)
            assert same(b, values(seed(size - 1), n, dt)), f"broadcast n={n} {dt}"
            outs = [np.empty(n + (p + me) % 3, dt) for p in range(size)]  # uneven splits
            ins = [values(seed(me, p + 1), n + (p + me) % 3, dt) for p in range(size)]
            dist.all_to_all(outs, ins, group=group)
            assert all(same(outs[p], values(seed(p, me + 1), n + (p + me) % 3, dt)) for p in range(size)), \
                f"all_to_all n={n} {dt}"
            done += 3
    dist.barrier(group=group)
    return done + 1


def check_async_and_p2p(dist, rank: int, size: int) -> None:
    """Async handles complete in issue order; send/recv and isend/irecv pair up by tag."""
    xs = [np.full(5, rank + k, np.float32) for k in range(3)]
    works = [dist.all_reduce(x, async_op=True) for x in xs]
    for k, w in enumerate(works):
        assert w.wait(timeout=30) and w.is_completed()
        assert same(xs[k], np.full(5, sum(r + k for r in range(size)), np.float32))
    if size < 2:
        return
    peer = rank ^ 1
    if peer >= size:
        return
    got = np.empty(4, np.int64)
    if rank % 2 == 0:
        dist.send(np.arange(4, dtype=np.int64) + rank, dst=peer)
        dist.recv(got, src=peer)
    else:
        dist.recv(got, src=peer)
        dist.send(np.arange(4, dtype=np.int64) + rank, dst=peer)
    assert same(got, np.arange(4, dtype=np.int64) + peer)
    a, b = np.empty(3, np.float64), np.empty(3, np.float64)
    reqs = [dist.irecv(a, src=peer, tag=1), dist.irecv(b, src=peer, tag=2),
            dist.isend(np.full(3, 2.0 * rank), dst=peer, tag=2), dist.isend(np.full(3, 1.0 * rank), dst=peer, tag=1)]
    for w in reqs:
        w.wait()
    assert same(a, np.full(3, 1.0 * peer)) and same(b, np.full(3, 2.0 * peer))


def check_groups(dist, rank: int, size: int) -> None:
    """A group of the even ranks; the odd ranks are not members and their calls are no-ops."""
    evens = list(range(0, size, 2))
    g = dist.new_group(evens)
    if rank in evens:
        assert dist.get_rank(g) == evens.index(rank) and dist.get_world_size(g) == len(evens)
        check_collectives(dist, rank, len(evens), [3], [np.float32], group=g, ranks=evens)
    else:
        assert dist.get_rank(g) == -1
        x = np.ones(2, np.float32)
        assert dist.all_reduce(x, group=g) is None and same(x, np.ones(2, np.float32))
