"""Host memory, shared by the backends whose device memory is the process's own (cpu, interp).

Buffers are numpy uint8 arrays, so tensors are zero-copy with numpy and a kernel argument's
address is the array's data pointer. Imported arrays (`wrap_host`) are borrowed, never copied.
"""

from __future__ import annotations

import numpy as np

from ..runtime.backend import Allocator, Buffer, Device
from ..runtime.errors import OutOfMemoryError

ALIGN = 64  # bytes: a cache line, and a full AVX-512 vector


class HostAllocator(Allocator):
    def __init__(self, device: Device):
        self.device = device

    def alloc(self, nbytes: int) -> Buffer:
        try:
            raw = np.empty(nbytes + ALIGN, dtype=np.uint8)
        except MemoryError:
            raise OutOfMemoryError(f"cannot allocate {nbytes} bytes on {self.device.name}",
                                   hint="free tensors you no longer need, or use smaller ones") from None
        start = (-raw.ctypes.data) % ALIGN
        return Buffer(self.device, nbytes, raw[start:start + nbytes], address=raw.ctypes.data + start)

    def free(self, buffer: Buffer) -> None:
        buffer.handle = None
        buffer.freed = True

    def copy_in(self, dst: Buffer, offset: int, src: np.ndarray) -> None:
        src = np.ascontiguousarray(src)
        dst.handle[offset:offset + src.nbytes] = src.reshape(-1).view(np.uint8)

    def copy_out(self, src: Buffer, offset: int, dst: np.ndarray) -> None:
        dst.reshape(-1).view(np.uint8)[:] = src.handle[offset:offset + dst.nbytes]

    def copy(self, dst: Buffer, dst_offset: int, src: Buffer, src_offset: int, nbytes: int) -> None:
        dst.handle[dst_offset:dst_offset + nbytes] = src.handle[src_offset:src_offset + nbytes]

    def host_view(self, buffer: Buffer) -> np.ndarray:
        return buffer.handle

    def wrap_host(self, array: np.ndarray) -> Buffer:
        """Borrow the memory of `array` (any strides): the buffer spans every element it reaches."""
        lo, hi = np.lib.array_utils.byte_bounds(array) if hasattr(np.lib, "array_utils") else np.byte_bounds(array)
        base = np.asarray(_Memory(lo, hi - lo, array)) if hi > lo else np.empty(0, np.uint8)
        return Buffer(self.device, hi - lo, base, owner=array, address=lo)


class _Memory:
    """Exposes [addr, addr+n) of a live array as a buffer, keeping the array alive."""

    def __init__(self, addr: int, n: int, owner: np.ndarray):
        self.owner = owner
        self.__array_interface__ = {"data": (addr, False), "shape": (n,), "typestr": "|u1", "version": 3}
