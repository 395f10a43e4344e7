"""What each collective algorithm sends: its schedule of steps, shared by both cost evaluators.

An algorithm is modelled as a list of bulk-synchronous `Step`s. A step is a set of flows
(src rank -> dst rank, bytes) that run at the same time; every rank waits for the step to end
before the next one starts. `reduce` is the number of bytes the busiest rank reduces in the
step (the gamma term). Two evaluators price a step: `kaiyuan.comm.cost.Topology` (alpha-beta-gamma
per transport, for the runtime's algorithm choice) and the link-level topologies of
`kaiyuan.comm.simulate` (routes, link contention, hop latency). One schedule, two prices: the
runtime's choice and the simulator's table cannot disagree about what an algorithm does.

Conventions: ranks 0..p-1, `m` is the size of each rank's input in bytes (all_gather: the part
a rank contributes; reduce_scatter and all_to_all: the whole p-chunk input), root is rank 0.
Ranks are laid out on a (hosts x ranks-per-host) grid for `hierarchical`, r = h * k + l.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...runtime.errors import UnsupportedError

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "reduce", "all_to_all")

# The flat algorithms of each collective (hierarchical is added where the topology has a grid).
FLAT = {
    "all_reduce": ("ring", "halving_doubling", "tree", "direct"),
    "all_gather": ("ring", "halving_doubling", "direct"),
    "reduce_scatter": ("ring", "halving_doubling", "direct"),
    "broadcast": ("tree", "ring", "halving_doubling", "direct"),
    "reduce": ("tree", "ring", "halving_doubling", "direct"),
    "all_to_all": ("direct", "halving_doubling"),
}
ALGORITHMS = ("ring", "halving_doubling", "tree", "direct", "hierarchical")


@dataclass
class Step:
    """Flows that run together. `fanout`: each sender sends one and the same buffer to all its
    destinations (a shared-memory transport writes it once); `repeat`: the step runs that many
    times back to back (a ring's p-1 identical steps are one Step)."""

    src: np.ndarray
    dst: np.ndarray
    nbytes: np.ndarray
    reduce: float = 0.0
    fanout: bool = False
    repeat: int = 1

    def lifted(self, groups: np.ndarray) -> "Step":
        """The same step run by every row of `groups` (group-local rank -> global rank) at once."""
        g = groups.shape[0]
        return Step(groups[:, self.src].reshape(-1), groups[:, self.dst].reshape(-1),
                    np.tile(self.nbytes, g), self.reduce, self.fanout, self.repeat)

    def mapped(self, order: np.ndarray) -> "Step":
        return Step(order[self.src], order[self.dst], self.nbytes, self.reduce, self.fanout, self.repeat)


def _step(src, dst, nbytes, reduce=0.0, fanout=False, repeat=1) -> Step:
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    return Step(src, dst, np.broadcast_to(np.asarray(nbytes, dtype=np.float64), src.shape).copy(),
                float(reduce), fanout, int(repeat))


def _ring(p: int, c: float, reduce: float, repeat: int) -> list[Step]:
    r = np.arange(p)
    return [_step(r, (r + 1) % p, c, reduce, repeat=repeat)] if repeat > 0 else []


def _all_pairs(p: int, c, reduce: float = 0.0, fanout: bool = False) -> list[Step]:
    if p < 2:
        return []
    src, dst = np.divmod(np.arange(p * p), p)
    keep = src != dst
    return [_step(src[keep], dst[keep], c, reduce, fanout)]


def _pow2_floor(p: int) -> int:
    return 1 << (p.bit_length() - 1)


def _xor_rounds(p2: int, chunk_of_d, reduce: bool, descending: bool) -> list[Step]:
    """Recursive halving (descending distances) or doubling: partner r ^ d among ranks < p2."""
    ds = [1 << i for i in range(p2.bit_length() - 1)]
    steps, r = [], np.arange(p2)
    for d in (reversed(ds) if descending else ds):
        c = chunk_of_d(d)
        steps.append(_step(r, r ^ d, c, c if reduce else 0.0))
    return steps


def _binomial(p: int, m_of_d, reduce: bool, to_root: bool) -> list[Step]:
    """Binomial tree rooted at 0: to the root (reduce, gather) by rising distance, from it
    (broadcast, scatter) by falling distance. `m_of_d(d)`: bytes on an edge of distance d."""
    ds = [1 << i for i in range((p - 1).bit_length())]
    steps, r = [], np.arange(p)
    for d in (ds if to_root else reversed(ds)):
        leaf = r[(r % (2 * d) == d)]
        c = m_of_d(d)
        if to_root:
            steps.append(_step(leaf, leaf - d, c, c if reduce else 0.0))
        else:
            steps.append(_step(leaf - d, leaf, c))
    return steps


def _bruck(p: int, block: float) -> list[Step]:
    """Bruck's log-step all-gather: in round i every rank sends min(2^i, p - 2^i) blocks."""
    steps, r, d = [], np.arange(p), 1
    while d < p:
        steps.append(_step(r, (r - d) % p, block * min(d, p - d)))
        d *= 2
    return steps


def _bruck_all_to_all(p: int, m: float) -> list[Step]:
    """Bruck's all-to-all: round i forwards the blocks whose index has bit i set (about half)."""
    steps, r, d, idx = [], np.arange(p), 1, np.arange(p)
    while d < p:
        steps.append(_step(r, (r + d) % p, m / p * np.count_nonzero(idx & d)))
        d *= 2
    return steps


def _fold(p: int, m: float, reduce: bool) -> tuple[int, list[Step], list[Step]]:
    """Non-power-of-two world sizes for halving-doubling: ranks >= p2 first hand their data to
    rank - p2 (`pre`), sit out, and get the result back at the end (`post`)."""
    p2 = _pow2_floor(p)
    extra = np.arange(p2, p)
    if len(extra) == 0:
        return p2, [], []
    return p2, [_step(extra, extra - p2, m, m if reduce else 0.0)], [_step(extra - p2, extra, m)]


def flat_schedule(collective: str, algo: str, p: int, m: float) -> list[Step]:
    if p <= 1:
        return []
    c = m / p
    if collective == "all_reduce":
        if algo == "ring":
            return _ring(p, c, c, p - 1) + _ring(p, c, 0.0, p - 1)
        if algo == "halving_doubling":
            p2, pre, post = _fold(p, m, True)
            half = _xor_rounds(p2, lambda d: m * d / p2, True, True)
            return pre + half + _xor_rounds(p2, lambda d: m * d / p2, False, False) + post
        if algo == "tree":
            return _binomial(p, lambda d: m, True, True) + _binomial(p, lambda d: m, False, False)
        if algo == "direct":
            return _all_pairs(p, c, (p - 1) * c) + _all_pairs(p, c, fanout=True)
    if collective == "all_gather":
        if algo == "ring":
            return _ring(p, m, 0.0, p - 1)
        if algo == "halving_doubling":
            return _bruck(p, m)
        if algo == "direct":
            return _all_pairs(p, m, fanout=True)
    if collective == "reduce_scatter":
        if algo == "ring":
            return _ring(p, c, c, p - 1)
        if algo == "halving_doubling":
            p2, pre, _ = _fold(p, m, True)
            post = [_step(np.arange(p2, p) - p2, np.arange(p2, p), c)] if p > p2 else []
            return pre + _xor_rounds(p2, lambda d: m * d / p2, True, True) + post
        if algo == "direct":
            return _all_pairs(p, c, (p - 1) * c)
    if collective == "broadcast":
        if algo == "tree":
            return _binomial(p, lambda d: m, False, False)
        if algo == "ring":  # scatter down a binomial tree, then a ring all-gather (van de Geijn)
            return _binomial(p, lambda d: m * min(d, p - d) / p, False, False) + _ring(p, c, 0.0, p - 1)
        if algo == "halving_doubling":  # the same scatter, then a recursive-doubling all-gather
            return _binomial(p, lambda d: m * min(d, p - d) / p, False, False) + _bruck(p, c)
        if algo == "direct":
            return [_step(np.zeros(p - 1, np.int64), np.arange(1, p), m, fanout=True)]
    if collective == "reduce":
        if algo == "tree":
            return _binomial(p, lambda d: m, True, True)
        if algo == "ring":  # ring reduce-scatter, then every rank sends its chunk to the root
            return _ring(p, c, c, p - 1) + [_step(np.arange(1, p), np.zeros(p - 1, np.int64), c)]
        if algo == "halving_doubling":  # recursive-halving reduce-scatter, then a binomial gather
            return (flat_schedule("reduce_scatter", "halving_doubling", p, m)
                    + _binomial(p, lambda d: m * min(d, p - d) / p, False, True))
        if algo == "direct":
            return [_step(np.arange(1, p), np.zeros(p - 1, np.int64), m, (p - 1) * m)]
    if collective == "all_to_all":
        if algo == "direct":
            return _all_pairs(p, c)
        if algo == "halving_doubling":
            return _bruck_all_to_all(p, m)
    raise UnsupportedError(f"no {algo!r} algorithm for {collective!r}",
                           hint=f"{collective} supports {', '.join(FLAT.get(collective, ()))} (and hierarchical "
                                "on a multi-host topology)")


# The phases of each hierarchical algorithm on a (hosts H) x (ranks per host k) grid: which
# collective runs on the rows ("inner", one host) or the columns ("outer", one rank per host,
# the "rails"), and the per-rank input size of that phase as a function of m, H, k.
HIERARCHICAL = {
    "all_reduce": (("inner", "reduce_scatter", lambda m, H, k: m),
                   ("outer", "all_reduce", lambda m, H, k: m / k),
                   ("inner", "all_gather", lambda m, H, k: m / k)),
    "all_gather": (("outer", "all_gather", lambda m, H, k: m),
                   ("inner", "all_gather", lambda m, H, k: m * H)),
    "reduce_scatter": (("inner", "reduce_scatter", lambda m, H, k: m),
                       ("outer", "reduce_scatter", lambda m, H, k: m / k)),
    "broadcast": (("leaders", "broadcast", lambda m, H, k: m),
                  ("inner", "broadcast", lambda m, H, k: m)),
    "reduce": (("inner", "reduce", lambda m, H, k: m),
               ("leaders", "reduce", lambda m, H, k: m)),
    "all_to_all": (("inner", "all_to_all", lambda m, H, k: m),
                   ("outer", "all_to_all", lambda m, H, k: m)),
}


def phase_groups(where: str, H: int, k: int) -> np.ndarray:
    grid = np.arange(H * k).reshape(H, k)
    return {"inner": grid, "outer": grid.T, "leaders": grid[:, :1].T}[where]


def hierarchical_schedule(collective: str, H: int, k: int, m: float, price) -> tuple[list[Step], list[str]]:
    """Phases of the hierarchical algorithm, each run by all its groups at once with the flat
    algorithm that `price(steps) -> seconds` finds cheapest there. Returns (steps, the algorithm of
    each phase)."""
    steps, picks = [], []
    for where, sub, size in HIERARCHICAL[collective]:
        groups = phase_groups(where, H, k)
        n = groups.shape[1]
        if n <= 1:
            continue
        best = None
        for algo in FLAT[sub]:
            lifted = [s.lifted(groups) for s in flat_schedule(sub, algo, n, size(m, H, k))]
            t = price(lifted)
            if best is None or t < best[0]:
                best = (t, algo, lifted)
        steps += best[2]
        picks.append(f"{where}:{sub}:{best[1]}")
    return steps, picks
