"""The `mpi` transport: kaiyuan.comm's algorithms over MPI point-to-point (mpi4py).

Run with `mpiexec -n 4 python script.py`; rank and size come from MPI. Each group has its own
communicator (MPI_Comm_create_group over the members). A message is two MPI messages: the
collective's wire header (with the payload size) under tag 2·stream and the payload under tag
2·stream+1, so several messages between one pair in one round still match in order. Receives
post their headers first and their payloads once the sizes are checked; everything is
non-blocking and polled with Test against the deadline (MPI has no timeout of its own).
MPI gives no view of a peer's state: a rank that died or never came shows up as a timeout
(mpiexec usually ends the whole job when a rank dies).
"""

from __future__ import annotations

import time

import numpy as np

from ...runtime.errors import UnsupportedError
from .. import wire
from .base import Backoff, Transport

_HDR_WORDS = len(wire.Header._fields) + 1  # + payload bytes


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise UnsupportedError(f"backend 'mpi' needs mpi4py ({e})",
                               hint="pip install 'kaiyuan[mpi]' (mpi4py and the mpich wheel)") from None
    return MPI


class MpiTransport(Transport):
    name = "mpi"

    @classmethod
    def join(cls, *, deadline: float, **_) -> "MpiTransport":
        return cls(_mpi())

    def __init__(self, MPI):
        self.MPI = MPI
        world = MPI.COMM_WORLD.Dup()
        self.rank, self.size = world.Get_rank(), world.Get_size()
        names = world.allgather(MPI.Get_processor_name())
        order = list(dict.fromkeys(names))
        self.host_of = [order.index(n) for n in names]
        self.comms = {0: (world, list(range(self.size)))}
        self.tag_ub = int(world.Get_attr(MPI.TAG_UB) or 32767)

    def new_group(self, gid, ranks):
        world = self.comms[0][0]
        comm = world.Create_group(world.Get_group().Incl(list(ranks)), tag=gid)
        self.comms[gid] = (comm, list(ranks))

    def exchange(self, sends, recvs, key, header, deadline):
        gid, stream = key
        comm, members = self.comms[gid]
        tag = 2 * stream
        if tag + 1 > self.tag_ub:
            raise UnsupportedError(f"tag {stream - 1} is beyond this MPI's tag limit {(self.tag_ub - 1) // 2 - 1}")
        where = {g: i for i, g in enumerate(members)}
        reqs, waiting = [], {}
        for dst, buf in sends:
            h = np.array([*header, buf.nbytes], np.int64)
            reqs.append(comm.Isend(h, where[dst], tag))
            reqs.append(comm.Isend(buf, where[dst], tag + 1))
            waiting[len(reqs) - 1] = dst
        heads = [np.empty(_HDR_WORDS, np.int64) for _ in recvs]
        hreqs = [comm.Irecv(h, where[src], tag) for h, (src, _, _) in zip(heads, recvs)]
        self._wait(hreqs, {i: r[0] for i, r in enumerate(recvs)}, deadline)
        temps = []
        for (src, out, fold), h in zip(recvs, heads):
            wire.check(src, header, wire.Header(*(int(v) for v in h[:-1])), int(h[-1]), out.nbytes)
            target = out if fold is None else np.empty_like(out)
            temps.append(target)
            reqs.append(comm.Irecv(target, where[src], tag + 1))
            waiting[len(reqs) - 1] = src
        self._wait(reqs, waiting, deadline)
        for (src, out, fold), t in zip(recvs, temps):
            if fold is not None and t.nbytes:
                fold(0, t)

    def _wait(self, reqs, waiting: dict, deadline: float) -> None:
        MPI, backoff = self.MPI, Backoff()
        while not MPI.Request.Testall(reqs):
            if time.monotonic() > deadline:
                pending = [waiting[i] for i, r in enumerate(reqs) if i in waiting and not r.Test()]
                for r in reqs:
                    try:
                        r.Cancel()
                    except MPI.Exception:
                        pass
                raise wire.WireTimeout(pending or list(waiting.values()))
            backoff.wait()

    def describe_peer(self, rank):
        return "no answer (MPI gives no view of a peer's state)"
