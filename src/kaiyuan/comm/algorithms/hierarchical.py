"""Hierarchical all_reduce: inside each host, then across hosts, then inside again.

Ranks must sit on hosts in contiguous, equal blocks of L (global order host by host, as
`kaiyuan launch`/mpiexec place them; KAIYUAN_COMM_LOCAL_SIZE=L pretends so on one host). With
rank = h·L + j:
1. inside host h, local rank j receives every local rank's raw chunk j (direct);
2. across hosts, the ranks with local index j form a chain h = 0 → H-1 carrying the running
   prefix of the rank-order fold of chunk j (host h folds its L raw chunks in order into the
   prefix from host h-1), and the last host sends the finished chunk to the others;
3. inside each host, the chunks are all-gathered (direct).
Only 1/L of the data crosses hosts per rank, and the fold is the same left fold in rank order as
every other algorithm's. Other collectives fall back (logged) to a flat algorithm.
"""

from __future__ import annotations

import numpy as np

from ..reduce_op import combine, finish
from .common import bounds


def layout(hosts: list[int]) -> tuple[int, int] | None:
    """(H, L) when the hosts are contiguous equal blocks of L > 1 ranks and H > 1, else None."""
    n = len(hosts)
    L = hosts.count(hosts[0])
    if n < 2 or L in (1, n) or n % L or any(hosts[r] != hosts[(r // L) * L] for r in range(n)) \
            or len({hosts[h * L] for h in range(n // L)}) != n // L:
        return None
    return n // L, L


def all_reduce(ctx, buf: np.ndarray, grid: tuple[int, int]) -> None:
    H, L = grid
    me = ctx.rank
    h, j = divmod(me, L)
    peers = [h * L + i for i in range(L)]
    b = bounds(buf.size, L)
    chunk = [buf[b[i]:b[i + 1]] for i in range(L)]
    raw = {i: ctx.empty(chunk[j].size, buf.dtype) for i in range(L) if i != j}
    raw[j] = chunk[j]
    ctx.step([(peers[i], chunk[i]) for i in range(L) if i != j], [(peers[i], raw[i]) for i in range(L) if i != j])
    acc = ctx.empty(chunk[j].size, buf.dtype)
    if h == 0:
        acc[...] = raw[0]
        start = 1
    else:
        ctx.step((), [((h - 1) * L + j, acc)])
        start = 0
    for i in range(start, L):
        combine(ctx.op, acc, raw[i])
    last = H - 1
    if h < last:
        ctx.step([((h + 1) * L + j, acc)])
        ctx.step((), [(last * L + j, acc)])
    else:
        finish(ctx.op, acc, ctx.size)
        ctx.step([(g * L + j, acc) for g in range(last)])
    chunk[j][...] = acc
    ctx.step([(peers[i], acc) for i in range(L) if i != j], [(peers[i], chunk[i]) for i in range(L) if i != j])


COLLECTIVES = {"all_reduce": all_reduce}
