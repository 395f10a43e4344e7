"""ProcessGroup (a set of global ranks over one transport) and Ctx, what an algorithm sees.

An algorithm talks in group ranks and typed 1-D arrays: `ctx.step(sends, recvs)` runs one
round of transfers. Ctx maps ranks to global ones, arrays to bytes, folds to `combine` with the
collective's op, attaches the collective's header to every message, and turns a transport's
timeout or mismatch into a CommError that names the collective and the ranks at fault.
"""

from __future__ import annotations

import os
import time

import numpy as np

from ..runtime.errors import CommError, CommMismatchError
from . import wire
from .handles import Lane
from .reduce_op import ReduceOp, combine


class ProcessGroup:
    """Members are `ranks` (global ranks, in group-rank order); `rank` is ours in the group, or
    -1 when this process is not a member (then every collective on it is a no-op)."""

    def __init__(self, transport, ranks, gid: int, timeout: float, backend: str):
        self.transport, self.ranks, self.gid, self.timeout, self.backend = transport, list(ranks), gid, timeout, backend
        self.size = len(self.ranks)
        self.rank = self.ranks.index(transport.rank) if transport.rank in self.ranks else -1
        self.seq = 0
        self.p2p_seq: dict[tuple, int] = {}
        self.lane = Lane(f"g{gid}-coll")
        self.p2p_lanes: dict[tuple, Lane] = {}  # (kind, peer, tag): ordered per peer and tag
        self.aborted: str | None = None
        self.pool: list[np.ndarray] = []  # scratch buffers reused by successive collectives (Ctx.empty)

    def __repr__(self) -> str:
        return f"ProcessGroup(gid={self.gid}, ranks={self.ranks}, rank={self.rank}, backend={self.backend!r})"

    def name_rank(self, r: int) -> str:
        g = self.ranks[r]
        return f"rank {r}" if g == r else f"rank {r} (global {g})"

    def hosts(self) -> list[int]:
        """Host index of each group rank (hierarchical algorithms, the cost model's topology)."""
        local = os.environ.get("KAIYUAN_COMM_LOCAL_SIZE")  # pretend hosts of this many ranks
        if local:
            return [g // max(1, int(local)) for g in self.ranks]
        host_of = list(self.transport.host_of) or [0] * self.transport.size
        return [host_of[g] for g in self.ranks]


class Ctx:
    """One collective call on one rank: what algorithms use to move and fold data."""

    def __init__(self, group: ProcessGroup, kind: str, header: wire.Header, op: ReduceOp = ReduceOp.SUM,
                 timeout: float | None = None, key=None):
        self.group, self.kind, self.header, self.op = group, kind, header, op
        self.rank, self.size = group.rank, group.size
        self.timeout = group.timeout if timeout is None else timeout
        self.deadline = time.monotonic() + self.timeout
        self.key = (group.gid, 0) if key is None else key
        self.algorithm = "?"
        self._scratch = 0

    def empty(self, n: int, dtype) -> np.ndarray:
        """A scratch array for this call. The k-th scratch of every collective on the group is the
        same memory, grown when needed: large calls do not pay fresh pages (page faults) each time.
        Safe because a group's collectives run one after another on its lane."""
        dtype = np.dtype(dtype)
        need, pool, i = n * dtype.itemsize, self.group.pool, self._scratch
        self._scratch += 1
        if i == len(pool):
            pool.append(np.empty(need, np.uint8))
        elif pool[i].nbytes < need:
            pool[i] = np.empty(need, np.uint8)
        return pool[i][:need].view(dtype)

    def copy(self, a: np.ndarray) -> np.ndarray:
        out = self.empty(a.size, a.dtype)
        out[...] = a
        return out

    def step(self, sends=(), recvs=()) -> None:
        """One round. sends: [(peer, array)]; recvs: [(peer, array, fold: bool)] completed in order;
        with fold the incoming values are combined into the array (acc ← op(acc, incoming))."""
        g = self.group
        if g.aborted:
            raise CommError(f"{self.kind} on a process group that failed earlier: {g.aborted}", collective=self.kind,
                            reason="aborted", hint="destroy_process_group() and init again")
        t_sends = [(g.ranks[p], _bytes(a)) for p, a in sends if p != self.rank]
        t_recvs = []
        for p, a, *fold in recvs:
            t_recvs.append((g.ranks[p], _bytes(a), self._folder(a) if fold and fold[0] else None))
        try:
            g.transport.exchange(t_sends, t_recvs, self.key, self.header, self.deadline)
        except wire.WireTimeout as e:
            raise self._fail(self._timeout_error(e)) from None
        except wire.WireMismatch as e:
            raise self._fail(self._mismatch_error(e)) from None

    def _folder(self, acc: np.ndarray):
        op, dtype, isz = self.op, acc.dtype, acc.dtype.itemsize

        def fold(offset: int, data: np.ndarray) -> None:
            n = data.nbytes // isz
            combine(op, acc[offset // isz: offset // isz + n], data.view(dtype))

        return fold

    # ---- errors ---------------------------------------------------------------------------------
    def what(self) -> str:
        g = self.group
        scope = "" if g.gid == 0 else f" on group {g.gid} (ranks {g.ranks})"
        return f"{self.kind} #{self.header.seq}{scope} [{self.algorithm}]"

    def _fail(self, err: CommError) -> CommError:
        """The group is unusable after an error (its channels may hold stray messages). A mismatch
        or a dead peer is also published, so ranks waiting on this one fail at once; a timeout is
        not — every rank reaches its own deadline and names the ranks that never arrived."""
        self.group.aborted = str(err.message)
        if err.reason != "timeout":
            self.group.transport.mark_failed(err.message)
        return err

    def _timeout_error(self, e: wire.WireTimeout) -> CommError:
        g = self.group
        waited = [g.ranks.index(x) for x in e.waiting if x in g.ranks]
        reached = [g.transport.reached(x, g.gid) for x in g.ranks]
        # ranks that never arrived at this collective: named rather than the neighbour we waited on
        late = [r for r, s in enumerate(reached) if s is not None and s < self.header.seq and self.key[1] == 0]
        never = [f"{g.name_rank(r)} never arrived ({g.transport.describe_peer(g.ranks[r])})" for r in late]
        if e.dead:
            dead = [g.ranks.index(x) for x in sorted(e.dead) if x in g.ranks]
            parts = [f"{g.name_rank(r)} {e.dead[g.ranks[r]]}" for r in dead]
            parts += [f"{g.name_rank(r)} has not arrived yet" for r in late if r not in dead]
            return CommError(f"{self.what()} on {g.name_rank(self.rank)}: {'; '.join(parts)}", collective=self.kind,
                             ranks=sorted(set(dead) | set(late)), reason="dead",
                             hint="the other ranks stop too; see the failing rank's own error above")
        if late:
            ranks, parts = late, never
        else:
            ranks = waited
            parts = [f"waiting for {g.name_rank(r)} ({g.transport.describe_peer(g.ranks[r])})" for r in ranks]
        return CommError(f"{self.what()} timed out after {self.timeout:g} s on {g.name_rank(self.rank)}: "
                         f"{', '.join(parts)}", collective=self.kind, ranks=ranks, reason="timeout",
                         hint="every rank of the group must make the same collective calls in the same order; "
                              "raise init_process_group(timeout=...) if a rank is only slow")

    def _mismatch_error(self, e: wire.WireMismatch) -> CommMismatchError:
        g = self.group
        r = g.ranks.index(e.src) if e.src in g.ranks else e.src
        mine, theirs = self.header.describe(), e.theirs.describe()
        if wire.agrees(self.header, e.theirs):
            text = (f"{g.name_rank(r)} sent {e.nbytes} bytes where {g.name_rank(self.rank)} expects "
                    f"{e.expected_nbytes} (sizes differ across ranks)")
        else:
            text = f"{g.name_rank(r)} runs {theirs}, {g.name_rank(self.rank)} runs {mine}"
        return CommMismatchError(f"{self.what()}: {text}", collective=self.kind, ranks=[r], reason="mismatch",
                                 hint="every rank must call the same collectives, in the same order, with the same "
                                      "element count, dtype, op and root")


def _bytes(a: np.ndarray) -> np.ndarray:
    if not a.flags.c_contiguous:
        raise AssertionError("kaiyuan.comm internal: non-contiguous transfer buffer")
    return a.reshape(-1).view(np.uint8)
