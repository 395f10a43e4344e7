"""Link-level topologies for the simulator: devices, directed links, routes.

A topology has `n` devices and a set of directed links, each with a bandwidth (bytes/s) and a
latency (s). `incidence(src, dst)` routes flows: it returns (flow index, link index) pairs, one
per link a flow crosses. A step of a collective (`schedules.Step`) then costs

    max over flows of (sum of the latencies on its route)              -- hops
  + max over links of (bytes of all flows crossing the link / bandwidth) -- contention
  + bytes the busiest device reduces / its reduction rate                 -- gamma

plus, per device, `message_us` for each message it issues in the step (the busiest device);
i.e. all flows of a step start together, share every link they cross fairly, and the step ends
when the most loaded link drains. Switches are non-blocking (only their ports are links).
`latency_us` is the device-to-device latency through one direct link or one switch; a route
through a switch crosses two links of half that latency each.
"""

from __future__ import annotations

import numpy as np

from ...runtime.errors import TopologyError
from .schedules import Step

GB = 1e9


def _check_count(name: str, n, low: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < low:
        raise TopologyError(f"{name} must be an integer >= {low}, got {n!r}",
                            hint=f"e.g. fullmesh(8, link_GBps=100, latency_us=1); {name} counts devices or links")
    return int(n)


def _check_positive(name: str, v, allow_zero: bool = False) -> float:
    ok = isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and np.isfinite(v)
    if not ok or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise TopologyError(f"{name} must be a finite number {bound}, got {v!r}",
                            hint="bandwidths are GB/s (1e9 bytes/s) per direction, latencies microseconds")
    return float(v)


class Fabric:
    """Base class. Subclasses set n, bw (bytes/s per link), lat (s per link), name and
    implement `incidence`. `reduce_GBps`: how fast one device reduces (bytes of input per second);
    `message_us`: what a device pays to issue one message (its sends in a step are issued one
    after another, so a step where a device talks to 383 peers costs it 383 of these)."""

    n: int
    bw: np.ndarray
    lat: np.ndarray
    name: str

    def __init__(self, reduce_GBps: float = 1000.0, message_us: float = 0.5):
        self.reduce_Bps = _check_positive("reduce_GBps", reduce_GBps) * GB
        self.message_s = _check_positive("message_us", message_us, allow_zero=True) * 1e-6

    @property
    def world_size(self) -> int:
        return self.n

    @property
    def nlinks(self) -> int:
        return len(self.bw)

    def incidence(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def grid(self) -> tuple[int, int] | None:
        """(groups, group size) for hierarchical algorithms, or None on a flat topology."""
        return None

    def order(self) -> np.ndarray:
        """The device order flat algorithms use for ranks 0..n-1 (a ring of short hops)."""
        return np.arange(self.n)

    def step_time(self, step: Step) -> float:
        if len(step.src) == 0:
            return 0.0
        fi, li = self.incidence(step.src, step.dst)
        load = np.bincount(li, weights=step.nbytes[fi], minlength=self.nlinks)
        hops = np.bincount(fi, weights=self.lat[li], minlength=len(step.src))
        issue = np.bincount(step.src).max() * self.message_s
        return (issue + hops.max() + (load / self.bw).max() + step.reduce / self.reduce_Bps) * step.repeat

    def time(self, steps: list[Step]) -> float:
        return float(sum(self.step_time(s) for s in steps))

    def __repr__(self) -> str:
        return self.name


def _cat(*pairs):
    return (np.concatenate([p[0] for p in pairs]).astype(np.int64),
            np.concatenate([p[1] for p in pairs]).astype(np.int64))


class FullMesh(Fabric):
    def __init__(self, n, link_GBps, latency_us, port_GBps=None, reduce_GBps=1000.0, message_us=0.5):
        super().__init__(reduce_GBps, message_us)
        self.n = _check_count("n", n)
        link = _check_positive("link_GBps", link_GBps) * GB
        lat = _check_positive("latency_us", latency_us, allow_zero=True) * 1e-6
        self.ports = port_GBps is not None
        bw, lats = [np.full(self.n * self.n, link)], [np.full(self.n * self.n, lat)]
        if self.ports:  # a device's total send (and receive) bandwidth over all its links
            port = _check_positive("port_GBps", port_GBps) * GB
            bw.append(np.full(2 * self.n, port))
            lats.append(np.zeros(2 * self.n))
        self.bw, self.lat = np.concatenate(bw), np.concatenate(lats)
        cap = f", port {port_GBps:g} GB/s" if self.ports else ""
        self.name = f"fullmesh({self.n}, {link_GBps:g} GB/s, {latency_us:g} us{cap})"

    def incidence(self, src, dst):
        f = np.arange(len(src))
        pairs = (f, src * self.n + dst)
        if not self.ports:
            return pairs
        nn = self.n * self.n
        return _cat(pairs, (f, nn + src), (f, nn + self.n + dst))


class Switch(Fabric):
    def __init__(self, n, link_GBps, latency_us, reduce_GBps=1000.0, message_us=0.5):
        super().__init__(reduce_GBps, message_us)
        self.n = _check_count("n", n)
        self.bw = np.full(2 * self.n, _check_positive("link_GBps", link_GBps) * GB)
        self.lat = np.full(2 * self.n, _check_positive("latency_us", latency_us, allow_zero=True) * 1e-6 / 2)
        self.name = f"switch({self.n}, {link_GBps:g} GB/s, {latency_us:g} us)"

    def incidence(self, src, dst):
        f = np.arange(len(src))
        return _cat((f, src), (f, self.n + dst))


def _ring_hops(pos_from, pos_to, size: int, bidirectional: bool):
    """Per flow: number of hops and direction (+1/-1) along a ring of `size` positions,
    the shorter way round when the ring is bidirectional (ties go forward)."""
    fwd = (pos_to - pos_from) % size
    if not bidirectional:
        return fwd, np.ones_like(fwd)
    back = fwd > size // 2
    return np.where(back, size - fwd, fwd), np.where(back, -1, 1)


def _ring_links(flow, start, hops, direction, size, link_of):
    """Incidence of walks along a ring: flow `flow[i]` leaves position start[i], `hops[i]` steps
    in `direction[i]`; `link_of(position, direction)` names the link leaving a position."""
    total = int(hops.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rep = np.repeat(np.arange(len(hops)), hops)
    j = np.arange(total) - np.repeat(np.cumsum(hops) - hops, hops)
    d = direction[rep]
    pos = (start[rep] + np.where(d > 0, j, -j)) % size
    return flow[rep], link_of(rep, pos, d)


class Ring(Fabric):
    def __init__(self, n, link_GBps, latency_us, bidirectional=True, reduce_GBps=1000.0, message_us=0.5):
        super().__init__(reduce_GBps, message_us)
        self.n = _check_count("n", n)
        self.bidirectional = bool(bidirectional)
        self.bw = np.full(2 * self.n, _check_positive("link_GBps", link_GBps) * GB)
        self.lat = np.full(2 * self.n, _check_positive("latency_us", latency_us, allow_zero=True) * 1e-6)
        self.name = f"ring({self.n}, {link_GBps:g} GB/s, {latency_us:g} us{'' if bidirectional else ', one way'})"

    def incidence(self, src, dst):
        hops, d = _ring_hops(src, dst, self.n, self.bidirectional)
        n = self.n
        return _ring_links(np.arange(len(src)), src, hops, d, n, lambda rep, pos, d: np.where(d > 0, pos, n + pos))


class Torus2D(Fabric):
    """x * y devices, device (i, j) = j * x + i, links to the 4 neighbours with wrap-around;
    dimension-order routing (x first, then y, each the shorter way round)."""

    def __init__(self, x, y, link_GBps, latency_us, reduce_GBps=1000.0, message_us=0.5):
        super().__init__(reduce_GBps, message_us)
        self.x, self.y = _check_count("x", x), _check_count("y", y)
        self.n = self.x * self.y
        self.bw = np.full(4 * self.n, _check_positive("link_GBps", link_GBps) * GB)
        self.lat = np.full(4 * self.n, _check_positive("latency_us", latency_us, allow_zero=True) * 1e-6)
        self.name = f"torus2d({self.x}x{self.y}, {link_GBps:g} GB/s, {latency_us:g} us)"

    def incidence(self, src, dst):
        X, Y, N = self.x, self.y, self.n
        sx, sy, dx, dy = src % X, src // X, dst % X, dst // X
        f = np.arange(len(src))
        hx, ex = _ring_hops(sx, dx, X, True)
        hy, ey = _ring_hops(sy, dy, Y, True)
        # link ids: +x leaving device v: v; -x: N + v; +y: 2N + v; -y: 3N + v
        along_x = _ring_links(f, sx, hx, ex, X, lambda rep, pos, d: np.where(d > 0, 0, N) + sy[rep] * X + pos)
        along_y = _ring_links(f, sy, hy, ey, Y, lambda rep, pos, d: np.where(d > 0, 2 * N, 3 * N) + pos * X + dx[rep])
        return _cat(along_x, along_y)

    def grid(self):
        return (self.y, self.x) if self.x > 1 and self.y > 1 else None

    def order(self):
        rows = [np.arange(j * self.x, (j + 1) * self.x)[:: 1 if j % 2 == 0 else -1] for j in range(self.y)]
        return np.concatenate(rows)  # a snake: every hop (and, for even y, the closing one) is one link


class FatTree(Fabric):
    """Devices on leaf switches of `leaf` ports each; leaves joined by a non-blocking core with
    `leaf * link / oversubscription` bytes/s up and down per leaf."""

    def __init__(self, n, link_GBps, latency_us, leaf=16, oversubscription=1.0, reduce_GBps=1000.0, message_us=0.5):
        super().__init__(reduce_GBps, message_us)
        self.n = _check_count("n", n)
        self.leaf = min(_check_count("leaf", leaf), self.n)
        over = _check_positive("oversubscription", oversubscription)
        if over < 1:
            raise TopologyError(f"oversubscription must be >= 1, got {oversubscription!r}",
                                hint="1 is a full-bisection fat tree; 2 halves the leaf uplinks")
        link = _check_positive("link_GBps", link_GBps) * GB
        half = _check_positive("latency_us", latency_us, allow_zero=True) * 1e-6 / 2
        self.leaves = -(-self.n // self.leaf)
        self.bw = np.concatenate([np.full(2 * self.n, link), np.full(2 * self.leaves, self.leaf * link / over)])
        self.lat = np.full(len(self.bw), half)
        tail = f", oversubscribed {over:g}:1" if over != 1 else ""
        self.name = f"fattree({self.n}, {link_GBps:g} GB/s, {latency_us:g} us, leaf {self.leaf}{tail})"

    def incidence(self, src, dst):
        n, L = self.n, self.leaves
        f = np.arange(len(src))
        ls, ld = src // self.leaf, dst // self.leaf
        far = ls != ld
        return _cat((f, src), (f, n + dst), (f[far], 2 * n + ls[far]), (f[far], 2 * n + L + ld[far]))


class Hierarchical(Fabric):
    """`outer.n` copies of `inner` (hosts) joined by `inner.n` copies of `outer` (rails: local
    device l of every host is on rail l). Device (host h, local l) = h * inner.n + l. A flow
    between hosts first moves inside its host to the local index of its destination, then
    along that rail (as NCCL's PXN does)."""

    def __init__(self, inner: Fabric, outer: Fabric):
        for name, part in (("inner", inner), ("outer", outer)):
            if not isinstance(part, Fabric):
                raise TopologyError(f"hierarchical: {name} must be a topology, got {part!r}",
                                    hint="e.g. hierarchical(inner=switch(8, 450, 1), outer=fattree(16, 50, 5))")
        self.inner, self.outer = inner, outer
        self.reduce_Bps, self.message_s = inner.reduce_Bps, inner.message_s
        H, k = outer.n, inner.n
        self.n = H * k
        self.bw = np.concatenate([np.tile(inner.bw, H), np.tile(outer.bw, k)])
        self.lat = np.concatenate([np.tile(inner.lat, H), np.tile(outer.lat, k)])
        self.name = f"hierarchical({inner.name} x {H} hosts, rails {outer.name})"

    def incidence(self, src, dst):
        k, Li, Lo, H = self.inner.n, self.inner.nlinks, self.outer.nlinks, self.outer.n
        hs, ls, hd, ld = src // k, src % k, dst // k, dst % k
        parts = []
        a = np.flatnonzero(ls != ld)
        if len(a):
            fi, li = self.inner.incidence(ls[a], ld[a])
            parts.append((a[fi], li + hs[a][fi] * Li))
        b = np.flatnonzero(hs != hd)
        if len(b):
            fi, li = self.outer.incidence(hs[b], hd[b])
            parts.append((b[fi], li + H * Li + ld[b][fi] * Lo))
        return _cat(*parts) if parts else (np.zeros(0, np.int64), np.zeros(0, np.int64))

    def grid(self):
        return (self.outer.n, self.inner.n) if self.outer.n > 1 and self.inner.n > 1 else None

    def order(self):
        inner = self.inner.order()
        return np.concatenate([h * self.inner.n + (inner if h % 2 == 0 else inner[::-1]) for h in range(self.outer.n)])


def fullmesh(n, link_GBps=100.0, latency_us=1.0, port_GBps=None, reduce_GBps=1000.0, message_us=0.5) -> FullMesh:
    """n devices, a dedicated link of link_GBps between every ordered pair; port_GBps caps what a
    device sends (and receives) over all its links together (None: no cap)."""
    return FullMesh(n, link_GBps, latency_us, port_GBps, reduce_GBps, message_us)


def switch(n, link_GBps=900.0, latency_us=1.0, reduce_GBps=1000.0, message_us=0.5) -> Switch:
    """n devices on one non-blocking switch (NVL72-style), one port of link_GBps each way per device."""
    return Switch(n, link_GBps, latency_us, reduce_GBps, message_us)


def ring(n, link_GBps=100.0, latency_us=1.0, bidirectional=True, reduce_GBps=1000.0, message_us=0.5) -> Ring:
    """n devices in a ring, each linked to its two neighbours (one, if not bidirectional)."""
    return Ring(n, link_GBps, latency_us, bidirectional, reduce_GBps, message_us)


def torus2d(x, y, link_GBps=100.0, latency_us=1.0, reduce_GBps=1000.0, message_us=0.5) -> Torus2D:
    """x * y devices in a 2-D torus (TPU-style), links to 4 neighbours."""
    return Torus2D(x, y, link_GBps, latency_us, reduce_GBps, message_us)


def fattree(n, link_GBps=50.0, latency_us=5.0, leaf=16, oversubscription=1.0, reduce_GBps=1000.0, message_us=0.5) -> FatTree:
    """n endpoints of a two-level fat tree (leaf switches of `leaf` endpoints, a non-blocking core)."""
    return FatTree(n, link_GBps, latency_us, leaf, oversubscription, reduce_GBps, message_us)


def hierarchical(inner: Fabric, outer: Fabric) -> Hierarchical:
    """outer.n hosts, each an `inner` topology, joined by inner.n rails, each an `outer` topology."""
    return Hierarchical(inner, outer)
