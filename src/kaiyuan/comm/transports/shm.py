"""The `shm` transport: processes on one host, talking through shared memory only.

Rendezvous (no sockets): all ranks derive the same file prefix from the job's name
($KAIYUAN_COMM_ID, set by `kaiyuan launch`, or MASTER_ADDR:MASTER_PORT, or init_method).
Rank 0 publishes a control segment `/dev/shm/<prefix>-ctl` (atomically, by rename) holding a
fresh token, the world size and the channel geometry; every rank then creates its inbound
segment `<prefix>-<token>-<rank>`, registers its pid, maps every peer's segment, and once all
ranks have mapped everything the files are unlinked — the memory lives on in the mappings, so
nothing is left behind in /dev/shm even if a rank is killed later.

Data: rank d's segment holds one channel per source s, a single-producer single-consumer ring
of SLOTS slots of CHUNK bytes (each with a 128-byte slot header: message key, the collective's
wire header, message size, chunk offset and length). A message is cut into chunks that are
pipelined through the slots; the receiver copies (or folds, for reductions) straight out of the
slot. Chunks of another key (another group, a point-to-point tag) that the receiver meets are
stashed and picked up later. Counters are 8-byte aligned int64 stores written after the data
they publish; that relies on stores becoming visible in program order (x86-64's TSO). Weakly
ordered CPUs (arm64) are untested.

Liveness: the control segment has each rank's pid and state (joined, exited, failed + a
message) and the collective it is in, so a waiting rank notices at once that a peer died or
failed, and a timeout names what the missing rank is doing.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import secrets
import threading
import time
from collections import defaultdict, deque

import numpy as np

from ...runtime.errors import CommError
from .. import wire
from .base import Backoff, Transport

DIR = "/dev/shm"
MAGIC = 0x4B59_5348_4D31  # "KYSHM1"
CHUNK = 512 * 1024
SLOTS = 8
HDR = 128  # bytes of a channel's counters and of a slot header
GROUPS = 32  # groups whose progress the control segment tracks
_CTL_RANK = 8 + GROUPS  # int64 fields per rank: pid, state, mapped, where (gid, seq, kind), _, _, seq per group
_MSG = 256  # bytes of failure message per rank
JOINED, EXITED, FAILED = 1, 2, 3


def prefix_for(name: str) -> str:
    return "ky-" + hashlib.sha1(name.encode()).hexdigest()[:16]


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return True


def _map(path: str, size: int | None = None) -> mmap.mmap:
    fd = os.open(path, os.O_RDWR | (os.O_CREAT | os.O_EXCL if size is not None else 0), 0o600)
    try:
        if size is not None:
            os.ftruncate(fd, size)
        else:
            size = os.fstat(fd).st_size
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


class _Channel:
    """One direction s → d: counters and slots inside d's segment (a view on it)."""

    def __init__(self, mem: np.ndarray, slots: int, chunk: int):
        self.head = mem[0:8].view(np.int64)  # chunks written (sender)
        self.tail = mem[64:72].view(np.int64)  # chunks consumed (receiver)
        self.slots, self.chunk = slots, chunk
        body = mem[HDR:]
        self.meta = [body[i * (HDR + chunk):i * (HDR + chunk) + HDR].view(np.int64) for i in range(slots)]
        self.data = [body[i * (HDR + chunk) + HDR:(i + 1) * (HDR + chunk)] for i in range(slots)]
        self.lock = threading.Lock()


def _channel_bytes(slots: int, chunk: int) -> int:
    return HDR + slots * (HDR + chunk)


class ShmTransport(Transport):
    name = "shm"

    @classmethod
    def join(cls, *, rank: int, size: int, name: str, deadline: float) -> "ShmTransport":
        return cls(rank, size, prefix_for(name), deadline)

    def __init__(self, rank: int, size: int, prefix: str, deadline: float):
        self.rank, self.size, self.prefix = rank, size, prefix
        self.host_of = [0] * size
        self._maps: list[mmap.mmap] = []
        self.ctl = self._control(deadline)
        c = self.ctl
        token, self.slots, self.chunk = int(c[2]), int(c[3]), int(c[4])
        cb = _channel_bytes(self.slots, self.chunk)
        mine = f"{DIR}/{prefix}-{token:x}-{rank}"
        self._own_path = mine
        self._maps.append(_map(mine, size * cb))
        segs = {rank: np.frombuffer(self._maps[-1], np.uint8)}
        self._set(rank, 0, os.getpid())
        self._set(rank, 1, JOINED)
        self._wait_all(lambda r: self._get(r, 1) >= JOINED, deadline, "did not join")
        for r in range(size):
            if r != rank:
                self._maps.append(_map(f"{DIR}/{prefix}-{token:x}-{r}"))
                segs[r] = np.frombuffer(self._maps[-1], np.uint8)
        # inbound[s]: channel s → me in my segment; outbound[d]: channel me → d in d's segment
        self.inbound = {s: _Channel(segs[rank][s * cb:(s + 1) * cb], self.slots, self.chunk) for s in range(size)}
        self.outbound = {d: _Channel(segs[d][rank * cb:(rank + 1) * cb], self.slots, self.chunk) for d in range(size)}
        self._set(rank, 2, 1)  # mapped everything
        self._wait_all(lambda r: self._get(r, 2) == 1 or self._get(r, 1) >= EXITED, deadline, "did not attach")
        self._unlink(mine)
        if rank == 0:
            self._unlink(f"{DIR}/{prefix}-ctl")
        self.stash: dict[tuple, deque] = defaultdict(deque)  # (src, gid, stream): under inbound[src].lock

    # ---- control segment -----------------------------------------------------------------------
    def _control(self, deadline: float) -> np.ndarray:
        path = f"{DIR}/{self.prefix}-ctl"
        nbytes = 64 + self.size * (_CTL_RANK * 8 + _MSG)
        if self.rank == 0:
            chunk = int(os.environ.get("KAIYUAN_SHM_CHUNK", CHUNK)) // 64 * 64 or 64
            slots = max(2, int(os.environ.get("KAIYUAN_SHM_SLOTS", SLOTS)))
            tmp = f"{path}.{os.getpid()}.tmp"
            m = _map(tmp, nbytes)
            c = np.frombuffer(m, np.int64)
            c[1], c[2], c[3], c[4] = self.size, secrets.randbits(48), slots, chunk
            c[5] = os.getpid()
            c[0] = MAGIC
            os.rename(tmp, path)  # atomic: a rank sees the old (stale) file or the new one
            self._maps.append(m)
            return c
        backoff = Backoff()
        while True:
            try:
                m = _map(path)
                c = np.frombuffer(m, np.int64)
                if len(c) >= 8 and c[0] == MAGIC and c[1] == self.size and _alive(int(c[5])):
                    self._maps.append(m)
                    return c
                m.close()
            except (FileNotFoundError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise CommError(f"init_process_group(backend='shm'): rank 0 did not publish the rendezvous "
                                f"{path} within the timeout", collective="init_process_group", ranks=[0],
                                reason="timeout", hint="start every rank with the same KAIYUAN_COMM_ID or "
                                                       "MASTER_ADDR/MASTER_PORT (kaiyuan launch does)")
            backoff.wait()

    def _field(self, r: int, i: int) -> int:
        return 8 + r * _CTL_RANK + i

    def _get(self, r: int, i: int) -> int:
        return int(self.ctl[self._field(r, i)])

    def _set(self, r: int, i: int, v: int) -> None:
        self.ctl[self._field(r, i)] = v

    def _msg_area(self, r: int) -> np.ndarray:
        base = (8 + self.size * _CTL_RANK) * 8 + r * _MSG
        return self.ctl.view(np.uint8)[base:base + _MSG]

    def _wait_all(self, ok, deadline: float, what: str) -> None:
        backoff = Backoff()
        while True:
            missing = [r for r in range(self.size) if not ok(r)]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise CommError(f"init_process_group(backend='shm'): rank(s) {missing} of {self.size} {what} within "
                                f"the timeout", collective="init_process_group", ranks=missing, reason="timeout",
                                hint="start all ranks (kaiyuan launch -n N) with the same rendezvous")
            backoff.wait()

    @staticmethod
    def _unlink(path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    # ---- peers -----------------------------------------------------------------------------------
    def dead(self, r: int) -> str | None:
        state = self._get(r, 1)
        if state == FAILED:
            text = bytes(self._msg_area(r)).rstrip(b"\0").decode(errors="replace")
            return f"failed: {text}"
        if state == EXITED:
            return "left the process group (destroy_process_group or exit)"
        if not _alive(self._get(r, 0)):
            return f"died (process {self._get(r, 0)} is gone)"
        return None

    def note(self, gid, seq, kind):
        self._set(self.rank, 3, gid)
        self._set(self.rank, 4, seq)
        self._set(self.rank, 5, wire.KINDS.index(kind) if kind in wire.KINDS else -1)
        if gid < GROUPS:
            self._set(self.rank, 8 + gid, seq + 1)

    def reached(self, rank, gid):
        return self._get(rank, 8 + gid) - 1 if gid < GROUPS else None

    def describe_peer(self, r):
        why = self.dead(r)
        if why:
            return why
        kind = self._get(r, 5)
        if kind < 0 or self._get(r, 1) < JOINED:
            return "has not started a collective"
        return f"is at {wire.KINDS[kind]} #{self._get(r, 4)} of group {self._get(r, 3)}"

    def mark_failed(self, reason):
        if self._get(self.rank, 1) == FAILED:
            return
        data = reason.encode()[:_MSG - 1]
        area = self._msg_area(self.rank)
        area[:] = 0
        area[:len(data)] = np.frombuffer(data, np.uint8)
        self._set(self.rank, 1, FAILED)

    def close(self):
        if self._get(self.rank, 1) != FAILED:
            self._set(self.rank, 1, EXITED)

    # ---- data ------------------------------------------------------------------------------------
    def exchange(self, sends, recvs, key, header, deadline):
        hdr = np.array(header, np.int64)
        out_sends = [[dst, buf, 0, False] for dst, buf in sends]  # dst, bytes, offset, done
        pending = [[src, out, fold, 0, None] for src, out, fold in recvs]  # src, out, fold, got, total
        backoff, last_check = Backoff(), time.monotonic()
        while True:
            moved = False
            for s in out_sends:
                if not s[3]:
                    moved |= self._push(s, key, hdr)
            while pending:
                progressed, finished = self._pull(pending[0], key, header)
                moved |= progressed
                if not finished:
                    break
                pending.pop(0)
            if not pending and all(s[3] for s in out_sends):
                return
            if moved:
                backoff.reset()
                continue
            now = time.monotonic()
            if now - last_check > 0.05 or now > deadline:
                last_check = now
                self._check_peers(out_sends, pending, now > deadline)
            backoff.wait()

    def _check_peers(self, out_sends, pending, expired: bool) -> None:
        waiting = {s[0] for s in out_sends if not s[3]} | {p[0] for p in pending[:1]}
        dead = {r: why for r in waiting if (why := self.dead(r))}
        if dead:
            if pending and pending[0][0] in dead and self._available(pending[0][0]):
                return  # it delivered before going: read it first
            raise wire.WireTimeout(waiting, dead)
        if expired:
            raise wire.WireTimeout(waiting)

    def _available(self, src: int) -> bool:
        ch = self.inbound[src]
        return int(ch.head[0]) > int(ch.tail[0])

    def _push(self, s, key, hdr) -> bool:
        dst, buf, off, _ = s
        ch = self.outbound[dst]
        moved = False
        with ch.lock:
            while True:
                head = int(ch.head[0])
                if head - int(ch.tail[0]) >= ch.slots:
                    break
                i = head % ch.slots
                n = min(ch.chunk, buf.nbytes - off)
                if n:
                    ch.data[i][:n] = buf[off:off + n]
                meta = ch.meta[i]
                meta[0], meta[1], meta[2], meta[3], meta[4] = key[0], key[1], buf.nbytes, off, n
                meta[5:11] = hdr
                ch.head[0] = head + 1
                off += n
                moved = True
                if off >= buf.nbytes:
                    s[3] = True
                    break
        s[2] = off
        return moved

    def _pull(self, p, key, header) -> tuple[bool, bool]:
        """Move available chunks of pending receive p; (progressed, finished)."""
        src, out, fold = p[0], p[1], p[2]
        moved = False
        while True:
            chunk = self._next_chunk(src, key)
            if chunk is None:
                return moved, False
            theirs, total, off, data, release = chunk
            try:
                if p[4] is None:
                    wire.check(src, header, wire.Header(*theirs), total, out.nbytes)
                    p[4] = total
                if data.nbytes:
                    if fold is None:
                        out[off:off + data.nbytes] = data
                    else:
                        fold(off, data)
            finally:
                release()
            p[3] += data.nbytes
            moved = True
            if p[3] >= p[4]:
                return True, True

    def _next_chunk(self, src: int, key):
        """The next chunk from src under `key`: (wire header fields, message bytes, offset, data,
        release) — from the stash, or straight from the slot; the channel stays locked until
        release() frees the slot, so no other thread can recycle it while we read."""
        ch = self.inbound[src]
        ch.lock.acquire()
        try:
            q = self.stash.get((src, key[0], key[1]))
            if q:
                item = q.popleft()
                ch.lock.release()
                return (*item, lambda: None)
            while True:
                tail = int(ch.tail[0])
                if int(ch.head[0]) <= tail:
                    ch.lock.release()
                    return None
                i = tail % ch.slots
                meta = ch.meta[i]
                k, n = (int(meta[0]), int(meta[1])), int(meta[4])
                fields = tuple(int(v) for v in meta[5:11])
                if k == (key[0], key[1]):
                    def release(ch=ch, tail=tail):
                        ch.tail[0] = tail + 1
                        ch.lock.release()

                    return fields, int(meta[2]), int(meta[3]), ch.data[i][:n], release
                # another key's chunk (another group or tag): keep a copy for its receiver
                self.stash[(src, k[0], k[1])].append((fields, int(meta[2]), int(meta[3]), ch.data[i][:n].copy()))
                ch.tail[0] = tail + 1
        except BaseException:
            if ch.lock.locked():
                ch.lock.release()
            raise
