"""Launch capture and replay (the idea of CUDA graphs): record the kernel launches a piece of host
code makes, then replay exactly those launches without running the host code again.

    with capture() as launches:      # runs the code as usual, and records every launch
        op(...)
    replays = [l.replay for l in launches]   # each: one backend call, arguments converted once

What replay skips is everything that is not a launch: argument checking, specialisation lookup,
autotuning, host-side numpy work. So a replay is only valid when the recorded launches alone are
the code's whole effect and their arguments stay valid: the caller must check that every pointer
a launch takes lies in memory that outlives the replays (`Launch.pointers()`), and must not
replay code that did host-side work. The graph executor does both checks per step.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

from .backend import PointerArg, Program

_local = threading.local()


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
    launches: list[Launch] = []
    _local.launches = launches
    try:
        yield launches
    finally:
        _local.launches = outer
        if outer is not None:
            outer.extend(launches)


def record(program: Program, grid, args) -> None:
    """Called by the launch path for every launch (cheap when nothing is capturing)."""
    launches = getattr(_local, "launches", None)
    if launches is not None:
        launches.append(Launch(program, tuple(grid), list(args)))
