"""Schedules of kaiyuan's own runtime algorithms (kaiyuan.comm.algorithms), where they differ from
the textbook ones in `schedules`.

The runtime folds every reduction in rank order, so that all algorithms give the same bits; its
algorithms move raw contributions or running prefixes instead of partial sums:
- ring all_reduce: a pipelined chain 0 -> n-1 carrying the prefix, finished segments flowing back
  n-1 -> 0 in the same rounds (segments of KAIYUAN_COMM_SEGMENT bytes, 1 MiB by default);
- halving_doubling all_reduce: halving rounds move raw contributions (about N/2 per round), the
  owner of each 1/p slice folds all n of them, then a recursive-doubling all-gather;
- tree all_reduce: a binomial gather of raw contributions to rank 0 (it folds (n-1)N), then a
  binomial broadcast;
- hierarchical all_reduce: direct exchange of raw chunks inside each host, a chain across hosts
  per local index, the last host sending the finished chunk to the others, a direct all-gather;
- ring broadcast: a pipelined chain root -> root+1 -> ... .
`cost.Topology` prices these (the runtime's choice); the simulator prices the textbook schedules
(what an accelerator library runs). Collectives not listed here use the textbook schedule.
"""

from __future__ import annotations

import os

import numpy as np

from .schedules import Step, _all_pairs, _binomial, _pow2_floor, _step

SEGMENT_BYTES = 1 << 20


def segment_bytes() -> int:
    """The runtime's pipelining unit (KAIYUAN_COMM_SEGMENT, as kaiyuan.comm.algorithms.common reads it)."""
    try:
        return max(1, int(os.environ.get("KAIYUAN_COMM_SEGMENT", SEGMENT_BYTES)))
    except ValueError:
        return SEGMENT_BYTES


def _segments(m: float, seg: int) -> tuple[int, float]:
    count = max(1, -(-int(m) // seg))
    return count, m / count


def _compress(rounds: list[tuple[tuple, tuple, float, float]]) -> list[Step]:
    """Rounds as (src tuple, dst tuple, bytes per flow, reduce) -> Steps, equal neighbours merged."""
    steps: list[Step] = []
    last = None
    for key in rounds:
        if key == last:
            steps[-1].repeat += 1
        elif key[0]:
            steps.append(_step(key[0], key[1], key[2], key[3]))
        last = key
    return steps


def ring_all_reduce(p: int, m: float, segment: int = SEGMENT_BYTES) -> list[Step]:
    S, seg = _segments(m, segment)
    last, rounds = p - 1, []
    for t in range(S + 2 * p - 2):
        src, dst, folds = [], [], False
        for me in range(p):
            if me < last and 0 <= t - me < S:  # up the chain
                src.append(me), dst.append(me + 1)
            if me > 0 and 0 <= t - me + 1 < S:
                folds = True
            if me == last and 0 <= t - last < S:  # the finished segment turns back
                src.append(me), dst.append(me - 1)
            if 0 < me < last and 0 <= t - (2 * p - 2 - me) < S:  # and flows down
                src.append(me), dst.append(me - 1)
        rounds.append((tuple(src), tuple(dst), seg, seg if folds else 0.0))
    return _compress(rounds)


def ring_broadcast(p: int, m: float, segment: int = SEGMENT_BYTES) -> list[Step]:
    S, seg = _segments(m, segment)
    rounds = []
    for t in range(S + p - 2):
        src = tuple(pos for pos in range(p - 1) if 0 <= t - pos < S)
        rounds.append((src, tuple(s + 1 for s in src), seg, 0.0))
    return _compress(rounds)


def halving_doubling_all_reduce(p: int, m: float) -> list[Step]:
    p2 = _pow2_floor(p)
    steps = []
    extra = np.arange(p2, p)
    if len(extra):
        steps.append(_step(extra, extra - p2, m))
    held = {r: {r} | ({r + p2} if r + p2 < p else set()) for r in range(p2)}  # contributions each rank holds
    d, frac = p2 // 2, 1.0
    while d >= 1:
        frac /= 2  # the slice every held contribution is cut to, as a fraction of m
        src = np.arange(p2)
        nbytes = np.array([len(held[r]) * frac * m for r in range(p2)])
        steps.append(Step(src, src ^ d, nbytes))
        held = {r: held[r] | held[r ^ d] for r in range(p2)}
        d //= 2
    steps[-1].reduce = (p - 1) * m / p2  # the owner folds all n contributions of its 1/p2 slice
    r, d = np.arange(p2), 1
    while d < p2:
        steps.append(_step(r, r ^ d, m * d / p2))
        d *= 2
    if len(extra):
        steps.append(_step(extra - p2, extra, m))
    return steps


def tree_all_reduce(p: int, m: float) -> list[Step]:
    steps, r, d = [], np.arange(p), 1
    while d < p:
        leaf = r[r % (2 * d) == d]
        steps.append(_step(leaf, leaf - d, np.minimum(d, p - leaf) * m))  # the subtree's raw blocks
        d *= 2
    steps[-1].reduce = (p - 1) * m  # rank 0 folds everything
    return steps + _binomial(p, lambda d: m, False, False)


def hierarchical_all_reduce(H: int, L: int, m: float) -> list[Step]:
    grid = np.arange(H * L).reshape(H, L)
    c = m / L
    steps = [s.lifted(grid) for s in _all_pairs(L, c, 0.0)]  # raw chunk j to local rank j
    for h in range(H - 1):  # the chain across hosts, every local index at once
        steps.append(_step(grid[h], grid[h + 1], c, L * c))
    last = grid[H - 1]
    src = np.repeat(last, H - 1)
    dst = grid[:H - 1].T.reshape(-1)
    steps.append(_step(src, dst, c, L * c))  # (the last host's fold)
    steps += [s.lifted(grid) for s in _all_pairs(L, c, fanout=True)]
    return steps


def implemented_schedule(collective: str, algo: str, p: int, m: float, grid=None,
                         segment: int = SEGMENT_BYTES) -> list[Step] | None:
    """The runtime's schedule, or None where it is the textbook one."""
    if p <= 1:
        return None
    if collective == "all_reduce":
        if algo == "ring":
            return ring_all_reduce(p, m, segment)
        if algo == "halving_doubling":
            return halving_doubling_all_reduce(p, m)
        if algo == "tree":
            return tree_all_reduce(p, m)
        if algo == "hierarchical" and grid:
            return hierarchical_all_reduce(*grid, m)
    if collective == "broadcast" and algo == "ring":
        return ring_broadcast(p, m, segment)
    return None
