"""Device memory of one GPU: cuMemAlloc/cuMemFree and copies, on the calling thread's stream.

A Buffer's `handle` is the device address (an int). Copies are issued on the CUDA stream of the
thread that runs them (driver.Context.stream: one per kaiyuan stream) and waited for, so a copy
queued on a kaiyuan stream is ordered with that stream's kernels and done when it returns.
Host arrays borrowed by kernels (`wrap_host`) are registered, not copied (hostmem.py).
"""

from __future__ import annotations

import weakref

import numpy as np

from ...runtime.backend import Allocator, Buffer
from ...runtime.interop import byte_bounds
from .driver import api, call
from .hostmem import HostRegistry


class CudaAllocator(Allocator):
    def __init__(self, device):
        self.device = device
        self.context = device.context
        self.host = HostRegistry(self.context)
        self._foreign: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # host Buffer -> device address

    def alloc(self, nbytes: int) -> Buffer:
        self.context.activate()
        ptr = call(api().cuMemAlloc, max(nbytes, 1), what=f"cuMemAlloc of {nbytes} bytes on {self.device.name}")
        return Buffer(self.device, nbytes, int(ptr))

    def free(self, buffer: Buffer) -> None:
        if buffer.freed or buffer.handle is None:
            return
        self.context.activate()
        call(api().cuMemFree, buffer.handle)
        buffer.handle, buffer.freed = None, True

    def copy_in(self, dst: Buffer, offset: int, src: np.ndarray) -> None:
        src = np.ascontiguousarray(src)
        if src.nbytes:
            self._sync_copy(api().cuMemcpyHtoDAsync, dst.handle + offset, src.ctypes.data, src.nbytes)

    def copy_out(self, src: Buffer, offset: int, dst: np.ndarray) -> None:
        if not dst.flags.c_contiguous:
            raise ValueError("copy_out needs a contiguous destination")
        if dst.nbytes:
            self._sync_copy(api().cuMemcpyDtoHAsync, dst.ctypes.data, src.handle + offset, dst.nbytes)

    def copy(self, dst: Buffer, dst_offset: int, src: Buffer, src_offset: int, nbytes: int) -> None:
        if nbytes:
            self._sync_copy(api().cuMemcpyDtoDAsync, self.address(dst) + dst_offset,
                            self.address(src) + src_offset, nbytes)

    def _sync_copy(self, fn, dst: int, src: int, nbytes: int) -> None:
        stream = self.context.stream()
        call(fn, dst, src, nbytes, stream)
        call(api().cuStreamSynchronize, stream)

    def wrap_host(self, array: np.ndarray) -> Buffer:
        """Register the array's pages with the GPU (mapped) and hand out its device address."""
        lo, hi = byte_bounds(array)
        buffer = Buffer(self.device, hi - lo, None, owner=array, address=lo)
        self.host.pin(buffer, lo, hi - lo)
        buffer.handle = self.host.device_pointer(lo) if hi > lo else 0
        return buffer

    def address(self, buffer: Buffer) -> int:
        """The device address of byte 0 of any buffer a kernel may get: ours, or host memory of
        another device (a host backend's buffer), which is registered on first use."""
        if buffer.device is self.device:
            if buffer.handle is None:
                raise ValueError("the buffer was freed")
            return buffer.handle
        known = self._foreign.get(buffer)
        if known is not None:
            return known
        if buffer.address is None:
            raise ValueError(f"a buffer of {buffer.device.name} is not addressable from {self.device.name}")
        self.host.pin(buffer, buffer.address, buffer.nbytes)
        address = self._foreign[buffer] = self.host.device_pointer(buffer.address)
        return address
