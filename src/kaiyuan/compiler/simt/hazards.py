"""Where the SIMT emitter needs a barrier: memory hazards between lanes since the last one.

Every emitted item (a group's lane loop, a reduce, a copy, ...) is captured with the memory it
touches, then placed after a barrier only if it conflicts with what lanes did since the last
barrier. Fewer barriers matter: each one splits the kernel into another region that OpenCL CPU
drivers (PoCL) compile as a separate work-item loop, and costs a block-wide wait on GPUs.

Names: a local array's name; "G" for global memory touched lane by lane (tile loads, stores,
atomics: lanes touch different addresses); "U" for uniform global accesses (scalar loads and
stores: every lane touches the same address with the same value).

Conflicts (read-after-write, write-after-read, write-after-write between different lanes):
  - reading a local array another lane wrote; writing one another lane read or wrote;
  - a lane-wise global read after a lane-wise or uniform write; a lane-wise write after any
    global write or a lane-wise read;
  - a uniform read after a lane-wise write, a uniform write after a lane-wise read. (A uniform
    access after a uniform one needs nothing: each lane sees its own identical write. A uniform
    write after a lane-wise write needs nothing either: each lane's own uniform write comes
    last, so the uniform value wins as program order says.)
At a loop head and after any scf op the state is unknown: the next access waits.
"""

from __future__ import annotations

from contextlib import contextmanager


class Hazards:
    def __init__(self):
        self.written: set = set()
        self.read: set = set()
        self.unknown = False
        self.capture: tuple[set, set] | None = None   # (reads, writes) of the item being emitted

    def conflicts(self, reads, writes) -> bool:
        if self.unknown:
            return bool(reads or writes)
        w, r = self.written, self.read
        for x in reads:
            if x == "G" and w & {"G", "U"} or x == "U" and "G" in w or x not in ("G", "U") and x in w:
                return True
        for x in writes:
            if x == "G" and (w & {"G", "U"} or "G" in r) or x == "U" and "G" in r or \
                    x not in ("G", "U") and (x in w or x in r):
                return True
        return False

    def barrier(self) -> None:
        self.written, self.read, self.unknown = set(), set(), False

    def note(self, reads=(), writes=()) -> None:
        """Record accesses of the item being captured (or of the code just emitted)."""
        if self.capture is not None:
            self.capture[0].update(reads)
            self.capture[1].update(writes)
        else:
            self.read.update(reads)
            self.written.update(writes)


@contextmanager
def item(em):
    """Capture the lines and accesses of one item; emit a barrier first if it conflicts."""
    hz = em.hazards
    if hz.capture is not None:          # nested: part of the enclosing item
        yield
        return
    body, em.body = em.body, []
    hz.capture = (set(), set())
    try:
        yield
    finally:
        lines, (reads, writes) = em.body, hz.capture
        em.body, hz.capture = body, None
    if hz.conflicts(reads, writes):
        em.barrier()
    hz.note(reads, writes)
    em.body.extend(lines)
