"""The `local` transport: ranks are threads of one process (kaiyuan.comm.spawn_threads).

A `LocalWorld` is shared by the threads that joined under the same name: a mailbox per (src,
dst, key) holding (header, copy of the bytes). Sends never block; a receive waits on the
world's condition variable until its message arrives, the deadline passes, or the sender has
failed (a thread that raised marks itself failed, so its peers stop waiting at once).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from ...runtime.errors import CommError
from .. import wire
from .base import Transport

_WORLDS: dict[str, "LocalWorld"] = {}
_WORLDS_LOCK = threading.Lock()


class LocalWorld:
    def __init__(self, name: str, size: int):
        self.name, self.size = name, size
        self.cv = threading.Condition()
        self.boxes: dict[tuple, deque] = defaultdict(deque)
        self.joined: set[int] = set()
        self.failed: dict[int, str] = {}
        self.where: dict[int, str] = {}
        self.reached: dict[tuple, int] = {}  # (rank, gid) -> last collective seq started
        self.exited: set[int] = set()
        self.members = 0  # joined and not yet closed


class LocalTransport(Transport):
    name = "local"

    def __init__(self, world: LocalWorld, rank: int):
        self.world, self.rank, self.size = world, rank, world.size
        self.host_of = [0] * world.size

    @classmethod
    def join(cls, *, rank: int, size: int, name: str, deadline: float) -> "LocalTransport":
        with _WORLDS_LOCK:
            world = _WORLDS.get(name)
            if world is None or world.size != size or rank in world.joined:
                world = _WORLDS[name] = LocalWorld(name, size)
            world.joined.add(rank)
            world.members += 1
        with world.cv:
            world.cv.notify_all()
            while len(world.joined) < size:
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(set(range(size)) - world.joined)
                    raise CommError(f"init_process_group(backend='local'): rank(s) {missing} of {size} did not join "
                                    f"within the timeout", collective="init_process_group", ranks=missing,
                                    reason="timeout", hint="start one thread per rank (kaiyuan.comm.spawn_threads)")
                world.cv.wait(min(left, 0.05))
        return cls(world, rank)

    def exchange(self, sends, recvs, key, header, deadline):
        w = self.world
        with w.cv:
            for dst, buf in sends:
                w.boxes[(self.rank, dst, key)].append((header, buf.copy()))
            if sends:
                w.cv.notify_all()
        for src, out, fold in recvs:
            h, data = self._take(src, key, deadline)
            wire.check(src, header, h, data.nbytes, out.nbytes)
            if fold is None:
                out[...] = data
            elif data.nbytes:
                fold(0, data)

    def _take(self, src, key, deadline):
        w = self.world
        box = w.boxes[(src, self.rank, key)]
        with w.cv:
            while not box:
                if src in w.failed:
                    raise wire.WireTimeout([src], {src: f"failed: {w.failed[src]}"})
                if src in w.exited:
                    raise wire.WireTimeout([src], {src: "left the process group (destroy_process_group)"})
                left = deadline - time.monotonic()
                if left <= 0:
                    raise wire.WireTimeout([src])
                w.cv.wait(min(left, 0.1))
            return box.popleft()

    def note(self, gid, seq, kind):
        self.world.where[self.rank] = f"is at {kind} #{seq} of group {gid}"
        self.world.reached[(self.rank, gid)] = seq

    def reached(self, rank, gid):
        return self.world.reached.get((rank, gid), -1)

    def describe_peer(self, rank):
        w = self.world
        if rank in w.failed:
            return f"failed: {w.failed[rank]}"
        if rank in w.exited:
            return "left the process group"
        return w.where.get(rank, "has not started a collective")

    def mark_failed(self, reason):
        with self.world.cv:
            self.world.failed[self.rank] = reason
            self.world.cv.notify_all()

    def close(self):
        w = self.world
        with w.cv:
            w.exited.add(self.rank)
            w.cv.notify_all()
        with _WORLDS_LOCK:
            w.members -= 1
            if w.members <= 0 and _WORLDS.get(w.name) is w:
                del _WORLDS[w.name]
