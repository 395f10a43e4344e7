"""Recursive halving-doubling: log2 p rounds with partners at distance p/2, p/4, ..., 1 (halving,
a reduce-scatter), then 1, 2, ..., p/2 (doubling, an all-gather); p is the largest power of two
≤ n, and the n-p extra ranks hand their data to rank r-p first and get the result back last.

For a schedule-independent reduction order the halving rounds move raw contributions, not
partial sums: in round k a rank sends 2^k contributions of a 1/2^(k+1) slice, N/2 bytes per round
instead of N/2^(k+1); the owner of each 1/p slice then folds all n contributions in rank order.
That costs (log2 p)/2 · N instead of ≈N per rank — cheap for the mid-sized messages this
algorithm is chosen for, where its log2 p latency wins.

all_gather and reduce_scatter need n to be a power of two (else: logged fallback to ring and
direct); broadcast falls back to the tree.
"""

from __future__ import annotations

import numpy as np

from .common import bounds, fold_in_rank_order


def _pow2(n: int) -> int:
    p = 1
    while p * 2 <= n:
        p *= 2
    return p


def _halving(ctx, buf: np.ndarray, b: list[int]):
    """Raw recursive halving over p chunks (offsets b). Returns (chunk index, folded chunk) on the
    p power-of-two ranks, None on extra ranks (they sent their data to rank r-p)."""
    n, me = ctx.size, ctx.rank
    p = _pow2(n)
    if me >= p:
        ctx.step([(me - p, buf)])
        return None
    contrib = {me: buf}
    if me + p < n:
        extra = ctx.empty(buf.size, buf.dtype)
        ctx.step((), [(me + p, extra)])
        contrib[me + p] = extra
    lo, hi = 0, p  # the chunk range this rank still covers; contrib arrays span b[lo]:b[hi]
    mine = {me}  # power-of-two ranks whose contributions (and extras) this rank holds
    d = p // 2
    while d >= 1:
        partner, mid = me ^ d, (lo + hi) // 2
        keep, give = ((mid, hi), (lo, mid)) if me & d else ((lo, mid), (mid, hi))
        theirs = sorted({u ^ d for u in mine} | {(u ^ d) + p for u in mine if (u ^ d) + p < n})
        base = b[lo]
        sends = [(partner, contrib[u][b[give[0]] - base:b[give[1]] - base]) for u in sorted(contrib)]
        got = {u: ctx.empty(b[keep[1]] - b[keep[0]], buf.dtype) for u in theirs}
        ctx.step(sends, [(partner, got[u]) for u in theirs])
        contrib = {u: a[b[keep[0]] - base:b[keep[1]] - base] for u, a in contrib.items()}
        contrib.update(got)
        mine |= {u ^ d for u in mine}
        lo, hi, d = keep[0], keep[1], d // 2
    acc = ctx.empty(b[lo + 1] - b[lo], buf.dtype)
    fold_in_rank_order(ctx, acc, contrib)
    return lo, acc


def _doubling(ctx, out: np.ndarray, b: list[int], p: int) -> None:
    """Recursive doubling all-gather among ranks < p: rank r starts with chunk r of `out`."""
    me, d = ctx.rank, 1
    while d < p:
        partner = me ^ d
        lo = me & ~(d - 1)  # my block of d chunks, then the partner's
        plo = partner & ~(d - 1)
        ctx.step([(partner, out[b[lo]:b[lo + d]])], [(partner, out[b[plo]:b[plo + d]])])
        d *= 2


def all_reduce(ctx, buf: np.ndarray) -> None:
    n, me = ctx.size, ctx.rank
    p = _pow2(n)
    b = bounds(buf.size, p)
    res = _halving(ctx, buf, b)
    if res is None:  # an extra rank: the result comes back from rank r-p
        ctx.step((), [(me - p, buf)])
        return
    c, acc = res
    buf[b[c]:b[c + 1]] = acc
    _doubling(ctx, buf, b, p)
    if me + p < n:
        ctx.step([(me + p, buf)])


def reduce(ctx, buf: np.ndarray, root: int) -> None:
    n, me = ctx.size, ctx.rank
    p = _pow2(n)
    b = bounds(buf.size, p)
    res = _halving(ctx, buf if me == root else ctx.copy(buf), b)
    sends = []
    if res is not None:
        c, acc = res
        if me == root:
            buf[b[c]:b[c + 1]] = acc
        else:
            sends = [(root, acc)]
    recvs = [(q, buf[b[q]:b[q + 1]]) for q in range(p) if q != me] if me == root else []
    ctx.step(sends, recvs)


def reduce_scatter(ctx, out: np.ndarray, inp: np.ndarray) -> None:
    b = bounds(inp.size, ctx.size)
    c, acc = _halving(ctx, inp, b)
    out[...] = acc


def all_gather(ctx, out: np.ndarray, inp: np.ndarray) -> None:
    b = bounds(out.size, ctx.size)
    out[b[ctx.rank]:b[ctx.rank + 1]] = inp
    _doubling(ctx, out, b, ctx.size)


def unsupported(kind: str, size: int) -> str | None:
    if kind in ("all_gather", "reduce_scatter") and size & (size - 1):
        return f"{kind} by halving-doubling needs a power-of-two group size, not {size}"
    return None


COLLECTIVES = {"all_reduce": all_reduce, "reduce": reduce, "reduce_scatter": reduce_scatter,
               "all_gather": all_gather}
