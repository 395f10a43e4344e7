"""Ring: every rank talks only to its neighbours r-1 and r+1 (group-rank order).

- all_gather: the classic ring, n-1 rounds, each rank forwards the block it received last.
- broadcast: a pipelined chain root → root+1 → ... in segments (KAIYUAN_COMM_SEGMENT bytes).
- all_reduce: a pipelined chain 0 → 1 → ... → n-1 carrying the running prefix of the rank-order
  fold (so the result is the same left fold as every other algorithm), with the finished segments
  flowing back n-1 → n-2 → ... → 0 over the links' other direction in the same rounds. Each link
  carries the data once each way: 2N per rank instead of the classic ring's 2N(n-1)/n, the price of
  a schedule-independent reduction order.
- reduce: the same up-chain; rank n-1 forwards finished segments to the root.
- reduce_scatter: the up-chain over the whole input, then rank n-1 sends each rank its block.
"""

from __future__ import annotations

import numpy as np

from ..reduce_op import finish
from .common import bounds, segments


def all_gather(ctx, out: np.ndarray, inp: np.ndarray) -> None:
    n, me = ctx.size, ctx.rank
    b = bounds(out.size, n)
    blk = [out[b[i]:b[i + 1]] for i in range(n)]
    blk[me][...] = inp
    right, left = (me + 1) % n, (me - 1) % n
    for s in range(n - 1):
        ctx.step([(right, blk[(me - s) % n])], [(left, blk[(me - s - 1) % n])])


def broadcast(ctx, buf: np.ndarray, root: int) -> None:
    n = ctx.size
    pos = (ctx.rank - root) % n  # position along the chain
    segs = segments(buf.size, buf.itemsize)
    nxt, prv = (ctx.rank + 1) % n, (ctx.rank - 1) % n
    for t in range(len(segs) + n - 2):
        sends, recvs = [], []
        s = t - pos + 1
        if pos > 0 and 0 <= s < len(segs):
            recvs.append((prv, buf[slice(*segs[s])]))
        s = t - pos
        if pos < n - 1 and 0 <= s < len(segs):
            sends.append((nxt, buf[slice(*segs[s])]))
        ctx.step(sends, recvs)


def _chain(ctx, work: np.ndarray, down: bool, root: int = -1) -> None:
    """The up-chain 0 → n-1 folding `work` in place; with `down` the finished segments return to
    every rank, else (root ≥ 0) rank n-1 forwards them to `root`."""
    n, me = ctx.size, ctx.rank
    segs = segments(work.size, work.itemsize)
    S, last = len(segs), n - 1
    steps = S + (2 * n - 2 if down else n - 1)
    for t in range(steps):
        sends, recvs, finished = [], [], None
        s = t - me  # up: send segment s to me+1 (after folding it in round t-1)
        if me < last and 0 <= s < S:
            sends.append((me + 1, work[slice(*segs[s])]))
        s = t - me + 1  # up: receive the prefix of segment s from me-1 and fold our values in
        if me > 0 and 0 <= s < S:
            recvs.append((me - 1, work[slice(*segs[s])], True))
            if me == last:
                finished = work[slice(*segs[s])]
        s = t - last  # rank n-1 passes finished segment s on
        if me == last and 0 <= s < S:
            if down:
                sends.append((last - 1, work[slice(*segs[s])]))
            elif root != last:
                sends.append((root, work[slice(*segs[s])]))
        if down and me < last:
            s = t - (2 * n - 3 - me)  # down: final segment s arrives from me+1 ...
            if 0 <= s < S:
                recvs.append((me + 1, work[slice(*segs[s])]))
            s = t - (2 * n - 2 - me)  # ... and goes on to me-1 a round later
            if me > 0 and 0 <= s < S:
                sends.append((me - 1, work[slice(*segs[s])]))
        if not down and me == root and root != last:
            s = t - last
            if 0 <= s < S:
                recvs.append((last, work[slice(*segs[s])]))
        ctx.step(sends, recvs)
        if finished is not None:
            finish(ctx.op, finished, n)


def all_reduce(ctx, buf: np.ndarray) -> None:
    if ctx.size > 1:
        _chain(ctx, buf, down=True)


def reduce(ctx, buf: np.ndarray, root: int) -> None:
    if ctx.size > 1:
        _chain(ctx, buf if ctx.rank == root else ctx.copy(buf), down=False, root=root)


def reduce_scatter(ctx, out: np.ndarray, inp: np.ndarray) -> None:
    n, me, last = ctx.size, ctx.rank, ctx.size - 1
    work = ctx.copy(inp)
    if n > 1:
        _chain(ctx, work, down=False, root=last)
    b = bounds(work.size, n)
    if me == last:
        out[...] = work[b[me]:b[me + 1]]
        ctx.step([(p, work[b[p]:b[p + 1]]) for p in range(n - 1)])
    else:
        ctx.step((), [(last, out)])


COLLECTIVES = {"all_reduce": all_reduce, "reduce_scatter": reduce_scatter, "all_gather": all_gather,
               "reduce": reduce, "broadcast": broadcast}
