"""Host memory the GPU reads and writes in place: numpy arrays passed straight to kernels.

The conformance suite (and users) pass numpy arrays to kernels on every device. On cuda they are
page-locked and mapped into the GPU's address space with `cuMemHostRegister(DEVICEMAP)`; with
unified addressing (every 64-bit platform CUDA supports) the kernel then uses the host address
itself, so no copy is made and results are in the array when the launch returns.

The driver refuses to register a page twice, and small numpy arrays share pages, so this module
keeps its own table of registered regions: a request registers only the pages no region covers
yet, and every region counts the buffers that use it; the last one to die unregisters it.
"""

from __future__ import annotations

import mmap
import threading
import weakref

from .driver import api, call

PAGE = mmap.PAGESIZE


class HostRegistry:
    """Registered page ranges of one process: [(start, end, users)], sorted, non-overlapping."""

    def __init__(self, context):
        self.context = context
        self.lock = threading.Lock()
        self.regions: list[list[int]] = []

    def pin(self, owner, address: int, nbytes: int) -> None:
        """Make [address, address + nbytes) usable by kernels until `owner` is collected."""
        if nbytes <= 0:
            return
        lo, hi = address - address % PAGE, -(-(address + nbytes) // PAGE) * PAGE
        with self.lock:
            self.context.activate()
            for gap_lo, gap_hi in self._gaps(lo, hi):
                call(api().cuMemHostRegister, gap_lo, gap_hi - gap_lo, _flags(), what="cuMemHostRegister")
                self.regions.append([gap_lo, gap_hi, 0])
            self.regions.sort()
            used = [r for r in self.regions if r[0] < hi and r[1] > lo]
            for r in used:
                r[2] += 1
        # Weak-reference callbacks run before the owner's attributes are cleared, so the array a
        # Buffer borrows is still alive when its pages are unregistered.
        weakref.finalize(owner, self._unpin, [r[0] for r in used])

    def _gaps(self, lo: int, hi: int):
        at = lo
        for start, end, _ in self.regions:
            if end <= at or start >= hi:
                continue
            if start > at:
                yield at, start
            at = max(at, end)
        if at < hi:
            yield at, hi

    def _unpin(self, starts: list[int]) -> None:
        with self.lock:
            for r in [r for r in self.regions if r[0] in starts]:
                r[2] -= 1
                if r[2] == 0:
                    self.regions.remove(r)
                    try:
                        self.context.activate()
                        api().cuMemHostUnregister(r[0])
                    except Exception:  # at interpreter exit the driver may be gone already
                        pass


    def device_pointer(self, address: int) -> int:
        """The address a kernel uses for registered host `address` (the same one with unified
        addressing, which every GPU since Fermi on 64-bit Linux and Windows has)."""
        if self.context.host_pointers_usable:
            return address
        return int(call(api().cuMemHostGetDevicePointer, address, 0))


def _flags() -> int:
    drv = api()
    return drv.CU_MEMHOSTREGISTER_DEVICEMAP | drv.CU_MEMHOSTREGISTER_PORTABLE
