"""Direct (full mesh): every rank talks to every other in one round.

Bandwidth-optimal on a full-mesh link or one host's memory (each rank moves (n-1)/n of the data
per phase), n-1 messages per rank per round. Reductions: each rank owns 1/n of the elements,
receives everyone's raw slice of it, and folds in rank order; then the owners' results are
gathered (all_reduce) or sent to the root (reduce).
"""

from __future__ import annotations

import numpy as np

from .common import bounds, scatter_owned_fold


def _chunks(buf: np.ndarray, n: int) -> list[np.ndarray]:
    b = bounds(buf.size, n)
    return [buf[b[i]:b[i + 1]] for i in range(n)]


def reduce_scatter(ctx, out: np.ndarray, inp: np.ndarray) -> None:
    chunks = _chunks(inp, ctx.size)
    scatter_owned_fold(ctx, chunks, out, chunks[ctx.rank])


def all_gather(ctx, out: np.ndarray, inp: np.ndarray) -> None:
    chunks = _chunks(out, ctx.size)
    me = ctx.rank
    chunks[me][...] = inp
    ctx.step([(p, inp) for p in range(ctx.size) if p != me], [(p, chunks[p]) for p in range(ctx.size) if p != me])


def all_reduce(ctx, buf: np.ndarray) -> None:
    chunks = _chunks(buf, ctx.size)
    mine = ctx.empty(chunks[ctx.rank].size, buf.dtype)
    scatter_owned_fold(ctx, chunks, mine, chunks[ctx.rank])
    all_gather(ctx, buf, mine)


def reduce(ctx, buf: np.ndarray, root: int) -> None:
    chunks = _chunks(buf, ctx.size)
    mine = ctx.empty(chunks[ctx.rank].size, buf.dtype)
    scatter_owned_fold(ctx, chunks, mine, chunks[ctx.rank])
    if ctx.rank == root:
        chunks[root][...] = mine
        ctx.step((), [(p, chunks[p]) for p in range(ctx.size) if p != root])
    else:
        ctx.step([(root, mine)])


def broadcast(ctx, buf: np.ndarray, root: int) -> None:
    if ctx.rank == root:
        ctx.step([(p, buf) for p in range(ctx.size) if p != root])
    else:
        ctx.step((), [(root, buf)])


def all_to_all(ctx, outs: list, ins: list) -> None:
    """Pairwise: sends to every peer at once; receives complete in rank order."""
    me, n = ctx.rank, ctx.size
    outs[me][...] = ins[me]
    order = [(me + k) % n for k in range(1, n)]  # staggered so rank 0 is not everyone's first target
    ctx.step([(p, ins[p]) for p in order], [(p, outs[p]) for p in order])


COLLECTIVES = {"all_reduce": all_reduce, "reduce_scatter": reduce_scatter, "all_gather": all_gather,
               "reduce": reduce, "broadcast": broadcast, "all_to_all": all_to_all}
