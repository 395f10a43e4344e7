"""vcpu's device memory: numpy blocks, counted against a fixed capacity.

A real chip's allocator calls its driver (clCreateBuffer, cuMemAlloc, ...). Ours keeps host
memory, because the programs the wrapped cpu compiler builds read a buffer's `address` (the
host address of byte 0). What it shows is the contract: exact-size blocks, a capacity that
raises OutOfMemoryError (kaiyuan's caching allocator then empties its cache and retries once),
the three copies, and the two optional zero-copy hooks a host-memory device offers.
"""

from __future__ import annotations

import numpy as np

import kaiyuan as ky

ALIGN = 64  # bytes: what the cpu C code's vector loads prefer


class VcpuAllocator(ky.Allocator):
    def __init__(self, device: ky.Device, capacity: int):
        self.device, self.capacity, self.in_use = device, capacity, 0

    def alloc(self, nbytes: int) -> ky.Buffer:
        if self.in_use + nbytes > self.capacity:
            raise ky.OutOfMemoryError(f"{self.device.name}: {nbytes} bytes requested, "
                                      f"{self.capacity - self.in_use} of {self.capacity} free",
                                      hint="free tensors, or raise KAIYUAN_VCPU_MEMORY_MB")
        raw = np.empty(nbytes + ALIGN, np.uint8)
        start = -raw.ctypes.data % ALIGN
        self.in_use += nbytes
        return ky.Buffer(self.device, nbytes, raw[start:start + nbytes], address=raw.ctypes.data + start)

    def free(self, buffer: ky.Buffer) -> None:
        self.in_use -= buffer.nbytes
        buffer.handle, buffer.freed = None, True

    # Copies are in bytes; `src`/`dst` arrays are contiguous (kaiyuan stages strided data itself).
    def copy_in(self, dst: ky.Buffer, offset: int, src: np.ndarray) -> None:
        dst.handle[offset:offset + src.nbytes] = np.ascontiguousarray(src).reshape(-1).view(np.uint8)

    def copy_out(self, src: ky.Buffer, offset: int, dst: np.ndarray) -> None:
        dst.reshape(-1).view(np.uint8)[:] = src.handle[offset:offset + dst.nbytes]

    def copy(self, dst: ky.Buffer, dst_offset: int, src: ky.Buffer, src_offset: int, nbytes: int) -> None:
        dst.handle[dst_offset:dst_offset + nbytes] = src.handle[src_offset:src_offset + nbytes]

    # ---- zero-copy hooks: only because this device's memory IS host memory (Device.is_host) ----
    def host_view(self, buffer: ky.Buffer) -> np.ndarray:
        """`tensor.numpy()` on vcpu is this view: no copy."""
        return buffer.handle

    def wrap_host(self, array: np.ndarray) -> ky.Buffer:
        """Borrow a host array (a kernel argument, `ky.from_numpy`) without copying. The buffer
        starts at the array's lowest byte, so negative strides and transposes fit."""
        itemsize, lo, hi = array.itemsize, array.ctypes.data, array.ctypes.data
        for n, step in zip(array.shape, array.strides):
            lo, hi = (lo + step * (n - 1), hi) if step < 0 else (lo, hi + step * (n - 1))
        nbytes = hi - lo + itemsize if array.size else 0
        raw = np.asarray(_Borrowed(lo, nbytes, array))
        return ky.Buffer(self.device, nbytes, raw, owner=array, address=lo)


class _Borrowed:
    """Presents [address, address + nbytes) of a live array to numpy, keeping the array alive."""

    def __init__(self, address: int, nbytes: int, owner: np.ndarray):
        self.owner = owner
        self.__array_interface__ = {"data": (address, False), "shape": (nbytes,), "typestr": "|u1", "version": 3}
