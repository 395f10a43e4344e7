"""Pieces shared by the algorithms: how data is split, and the rank-order fold.

The reduction contract (docs/comm.md, "Reduction order"): every element of a reduced result
is the left fold in group-rank order, op(...op(op(x0, x1), x2)..., x_{n-1}), then AVG's division.
Each algorithm moves either raw contributions or a running prefix of that fold — never a
partial of a middle range — so all of them produce the same bits.
"""

from __future__ import annotations

import os

import numpy as np

from ..reduce_op import combine, finish

SEGMENT_BYTES = 1 << 20  # pipelining unit of ring's chains (KAIYUAN_COMM_SEGMENT overrides)


def bounds(n: int, parts: int) -> list[int]:
    """parts+1 offsets splitting n elements into parts of sizes differing by at most one."""
    q, r = divmod(n, parts)
    out = [0]
    for i in range(parts):
        out.append(out[-1] + q + (1 if i < r else 0))
    return out


def segments(n: int, itemsize: int) -> list[tuple[int, int]]:
    seg = max(1, int(os.environ.get("KAIYUAN_COMM_SEGMENT", SEGMENT_BYTES)) // itemsize)
    return [(lo, min(n, lo + seg)) for lo in range(0, n, seg)] or [(0, 0)]


def fold_in_rank_order(ctx, acc: np.ndarray, parts: dict[int, np.ndarray]) -> None:
    """acc ← left fold of parts[0], parts[1], ... (every group rank present), then AVG's division."""
    acc[...] = parts[0]
    for r in range(1, ctx.size):
        combine(ctx.op, acc, parts[r])
    finish(ctx.op, acc, ctx.size)


def scatter_owned_fold(ctx, buf_chunks: list[np.ndarray], acc: np.ndarray, own: np.ndarray) -> None:
    """Direct reduce-scatter on one rank: send buf_chunks[p] to every p, and fold the chunk this
    rank owns — own contribution `own` and the peers' — into `acc` in rank order.

    Receives from lower ranks come in the first round (the first copied, the rest folded), our
    own chunk is folded next, then receives from higher ranks; sends go out in the first round."""
    me, n = ctx.rank, ctx.size
    sends = [(p, buf_chunks[p]) for p in range(n) if p != me]
    low = [(p, acc, p > 0) for p in range(me)]
    ctx.step(sends, low)
    if me == 0:
        acc[...] = own
    else:
        combine(ctx.op, acc, own)
    ctx.step((), [(p, acc, True) for p in range(me + 1, n)])
    finish(ctx.op, acc, n)
