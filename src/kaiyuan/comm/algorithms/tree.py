"""Binomial tree: ⌈log2 n⌉ rounds, for small (latency-bound) messages.

- broadcast: in round k, the ranks that have the data (relative rank v < 2^k) send it to v + 2^k.
- reduce: a binomial gather of the raw contributions to the root (a rank forwards everything its
  subtree holds), and the root folds them in rank order; the root receives (n-1)·N bytes, which
  is why the cost model picks the tree only for small messages.
- all_reduce = reduce to rank 0 + broadcast; all_gather = gather + broadcast;
  reduce_scatter = reduce to rank 0 + a binomial scatter of the blocks.
"""

from __future__ import annotations

import numpy as np

from .common import bounds, fold_in_rank_order


def _rounds(n: int) -> int:
    k = 0
    while (1 << k) < n:
        k += 1
    return k


def broadcast(ctx, buf: np.ndarray, root: int) -> None:
    n = ctx.size
    v = (ctx.rank - root) % n
    for k in range(_rounds(n)):
        d = 1 << k
        if v < d and v + d < n:
            ctx.step([((v + d + root) % n, buf)])
        elif d <= v < 2 * d:
            ctx.step((), [((v - d + root) % n, buf)])


def gather(ctx, mine: np.ndarray, root: int) -> dict[int, np.ndarray] | None:
    """Every rank's `mine` (same shape) at the root, as {group rank: array}; None elsewhere."""
    n = ctx.size
    v = (ctx.rank - root) % n
    held = {v: mine}  # by relative rank
    for k in range(_rounds(n)):
        d = 1 << k
        if v % (2 * d) == d:  # send the subtree's blocks to the parent, then done
            ctx.step([((v - d + root) % n, held[u]) for u in sorted(held)])
            return None
        if v % (2 * d) == 0 and v + d < n:
            incoming = {u: ctx.empty(mine.size, mine.dtype) for u in range(v + d, min(v + 2 * d, n))}
            ctx.step((), [((v + d + root) % n, incoming[u]) for u in sorted(incoming)])
            held.update(incoming)
    return {(u + root) % n: a for u, a in held.items()}


def scatter(ctx, blocks: list[np.ndarray] | None, out: np.ndarray, root: int) -> None:
    """The root's blocks[r] lands in rank r's `out`, down the binomial tree."""
    n = ctx.size
    v = (ctx.rank - root) % n
    held = {u: blocks[(u + root) % n] for u in range(n)} if v == 0 else None
    for k in reversed(range(_rounds(n))):
        d = 1 << k
        if v % (2 * d) == 0 and v + d < n and held is not None:
            sub = range(v + d, min(v + 2 * d, n))
            ctx.step([((v + d + root) % n, held.pop(u)) for u in sub])
        elif v % (2 * d) == d:
            sub = range(v, min(v + d, n))
            held = {u: (out if u == v else ctx.empty(out.size, out.dtype)) for u in sub}  # reduce_scatter's equal blocks
            ctx.step((), [((v - d + root) % n, held[u]) for u in sub])
    if v == 0:
        out[...] = held[0]


def reduce(ctx, buf: np.ndarray, root: int) -> None:
    parts = gather(ctx, buf, root)
    if parts is not None:
        parts[root] = ctx.copy(buf)  # buf is the accumulator too
        fold_in_rank_order(ctx, buf, parts)


def all_reduce(ctx, buf: np.ndarray) -> None:
    reduce(ctx, buf, 0)
    broadcast(ctx, buf, 0)


def all_gather(ctx, out: np.ndarray, inp: np.ndarray) -> None:
    parts = gather(ctx, inp, 0)
    if parts is not None:
        b = bounds(out.size, ctx.size)
        for r, a in parts.items():
            out[b[r]:b[r + 1]] = a
    broadcast(ctx, out, 0)


def reduce_scatter(ctx, out: np.ndarray, inp: np.ndarray) -> None:
    work = ctx.copy(inp)
    parts = gather(ctx, inp, 0)
    b = bounds(inp.size, ctx.size)
    blocks = None
    if parts is not None:
        fold_in_rank_order(ctx, work, parts)
        blocks = [work[b[r]:b[r + 1]] for r in range(ctx.size)]
    scatter(ctx, blocks, out, 0)


COLLECTIVES = {"all_reduce": all_reduce, "reduce_scatter": reduce_scatter, "all_gather": all_gather,
               "reduce": reduce, "broadcast": broadcast}
