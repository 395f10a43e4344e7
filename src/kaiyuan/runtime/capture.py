"""Launch capture and replay (the idea of CUDA graphs): record the kernel launches a piece of host
code makes, then replay exactly those launches without running the host code again.

    with capture() as launches:      # runs the code as usual, and records every launch
        op(...)
    replays = [l.replay for l in launches]   # each: one backend call, arguments converted once
    run_all = replay_list(launches)          # or all of them in as few backend calls as possible

What replay skips is everything that is not a launch: argument checking, specialisation lookup,
autotuning, host-side numpy work. So a replay is only valid when the recorded launches alone are
the code's whole effect and their arguments stay valid: the caller must check that every pointer
a launch takes lies in memory that outlives the replays (`Launch.pointers()`), and must not
replay code that did host-side work. The runtime helps with the second: host code that writes
device memory outside a launch (`write_host`, host copies) or tunes a kernel calls `taint()`,
which clears `pure` on every capture block it runs in. Each block also lists the buffers the
caching allocator handed out inside it (`allocated`): memory the captured code made for itself.
The graph executor and the eager ops' launch plans (kaiyuan.ops._replay) check both.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

from .backend import PointerArg, Program

_local = threading.local()


class Launches(list):
    """The launches recorded by one `capture()` block, in order; `pure` is False once host code
    in the block wrote device memory or tuned (see `taint`); `allocated` holds the buffers the
    caching allocator handed out in the block."""

    __slots__ = ("pure", "allocated", "parent")

    def __init__(self, parent=None):
        super().__init__()
        self.pure, self.allocated, self.parent = True, [], parent

    def owner_of(self, address: int):
        """The buffer allocated in the block whose bytes hold `address`, or None."""
        for b in self.allocated:
            if b.address is not None and b.address <= address < b.address + max(b.nbytes, 1):
                return b
        return None


@dataclass
class Launch:
    program: Program
    grid: tuple
    args: list

    def pointers(self) -> list[tuple[int, int]]:
        """(address, offset) of every pointer argument."""
        return [(a.buffer.address, a.offset) for a in self.args if type(a) is PointerArg]

    @property
    def replay(self):
        return self.program.bind(self.grid, self.args)


@contextmanager
def capture():
    """Record (and still run) every kernel launch made on this thread inside the block."""
    outer = getattr(_local, "launches", None)
    launches = Launches(outer)
    _local.launches = launches
    try:
        yield launches
    finally:
        _local.launches = outer
        if outer is not None:
            outer.extend(launches)
            outer.allocated.extend(launches.allocated)
            outer.pure = outer.pure and launches.pure


def capturing() -> bool:
    """Is this thread inside a `capture()` block?"""
    return getattr(_local, "launches", None) is not None


def taint() -> None:
    """Mark every capture block this thread is in as not replayable: host code wrote device memory
    outside a launch, or a kernel was tuned (its timing launches are recorded too)."""
    launches = getattr(_local, "launches", None)
    while launches is not None:
        launches.pure = False
        launches = launches.parent


def allocated(buffer) -> None:
    """Called by the caching allocator for every buffer it hands out (cheap when not capturing)."""
    launches = getattr(_local, "launches", None)
    if launches is not None:
        launches.allocated.append(buffer)


def record(program: Program, grid, args) -> None:
    """Called by the launch path for every launch (cheap when nothing is capturing)."""
    launches = getattr(_local, "launches", None)
    if launches is not None:
        launches.append(Launch(program, tuple(grid), list(args)))


def replay_list(launches: list[Launch]):
    """One callable replaying `launches` in order. Consecutive launches whose Program class
    offers `bind_list` are bound together (one backend call for the run); the others replay one
    by one. An error raised by launch i carries `launch_index = i`, so a caller can say which
    of its steps failed."""
    parts: list = []  # (index of the part's first launch, callable)
    i = 0
    while i < len(launches):
        cls = type(launches[i].program)
        j = i + 1
        if hasattr(cls, "bind_list"):
            while j < len(launches) and type(launches[j].program) is cls:
                j += 1
            parts.append((i, _indexed(cls.bind_list(launches[i:j]), i, j)))
        else:
            parts.append((i, _indexed(launches[i].replay, i, j)))
        i = j
    calls = [c for _, c in parts]

    def replay():
        for call in calls:
            call()

    return replay


def _indexed(call, first: int, end: int):
    """`call`, with errors tagged by the index of the failing launch (the part's first when the
    backend cannot say which)."""
    def run():
        try:
            call()
        except Exception as e:  # noqa: BLE001 - tagged and re-raised unchanged
            if getattr(e, "launch_index", None) is None:
                e.launch_index = first
            else:
                e.launch_index += first
            raise

    return run
