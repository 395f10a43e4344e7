"""The opencl backend: every OpenCL device of every platform, through pyopencl.

    OpenCLBackend   -- one device per OpenCL device, across platforms: opencl:0, opencl:1, ...
    OpenCLDevice    -- a context and an in-order queue; capabilities from the device's info
    OpenCLAllocator -- cl.Buffer memory; host arrays wrapped with CL_MEM_USE_HOST_PTR
"""

from __future__ import annotations

import functools

import numpy as np

from ...runtime.backend import Allocator, Backend, Buffer, Capabilities, Device
from ...runtime.errors import DeviceError, OutOfMemoryError
from ...runtime.interop import byte_bounds


def _cl():
    import pyopencl as cl

    return cl


class OpenCLAllocator(Allocator):
    def __init__(self, device: "OpenCLDevice"):
        self.device = device

    def alloc(self, nbytes: int) -> Buffer:
        cl = _cl()
        try:
            mem = cl.Buffer(self.device.context, cl.mem_flags.READ_WRITE, max(nbytes, 1))
        except cl.Error as e:
            raise OutOfMemoryError(f"cannot allocate {nbytes} bytes on {self.device.name}: {e}",
                                   hint="free tensors you no longer need, or use smaller ones") from None
        return Buffer(self.device, nbytes, mem)

    def free(self, buffer: Buffer) -> None:
        if buffer.handle is not None and buffer.owner is None:
            buffer.handle.release()
        buffer.handle, buffer.freed = None, True

    def copy_in(self, dst: Buffer, offset: int, src: np.ndarray) -> None:
        src = np.ascontiguousarray(src)
        if src.nbytes:
            _cl().enqueue_copy(self.device.queue, dst.handle, src, dst_offset=offset)

    def copy_out(self, src: Buffer, offset: int, dst: np.ndarray) -> None:
        if dst.nbytes:
            _cl().enqueue_copy(self.device.queue, dst, src.handle, src_offset=offset)

    def copy(self, dst: Buffer, dst_offset: int, src: Buffer, src_offset: int, nbytes: int) -> None:
        if nbytes:
            _cl().enqueue_copy(self.device.queue, dst.handle, src.handle, byte_count=nbytes,
                               src_offset=src_offset, dst_offset=dst_offset)
            self.device.queue.finish()

    def wrap_host(self, array: np.ndarray) -> Buffer | None:
        """The host array's memory as a cl.Buffer (CL_MEM_USE_HOST_PTR) spanning its byte bounds;
        `owner` is the array (the Program syncs such buffers around a launch and waits for it)."""
        cl = _cl()
        if array.size == 0:
            return Buffer(self.device, 0, cl.Buffer(self.device.context, cl.mem_flags.READ_WRITE, 1), owner=array)
        lo, hi = byte_bounds(array)
        view = np.asarray(_HostBytes(lo, hi - lo, array))
        mem = cl.Buffer(self.device.context, cl.mem_flags.READ_WRITE | cl.mem_flags.USE_HOST_PTR, hostbuf=view)
        return Buffer(self.device, hi - lo, mem, owner=array)


class _HostBytes:
    """Bytes [addr, addr+n) of a live host array, as a buffer-protocol object keeping it alive."""

    def __init__(self, addr: int, n: int, owner: np.ndarray):
        self.owner = owner
        self.__array_interface__ = {"data": (addr, False), "shape": (n,), "typestr": "|u1", "version": 3}


class OpenCLDevice(Device):
    @functools.cached_property
    def cl_device(self):
        return self.backend.cl_devices()[self.index]

    @functools.cached_property
    def context(self):
        return _cl().Context([self.cl_device])

    @functools.cached_property
    def queue(self):
        return _cl().CommandQueue(self.context)

    @functools.cached_property
    def allocator(self) -> OpenCLAllocator:
        return OpenCLAllocator(self)

    @functools.cached_property
    def compiler(self):
        from .compiler import OpenCLCompiler

        return OpenCLCompiler(self)

    @functools.cached_property
    def capabilities(self) -> Capabilities:
        d, ext = self.cl_device, self.cl_device.extensions.split()
        atomics = ("add", "max", "min", "and", "or", "xor", "xchg", "cas")
        return Capabilities(vector_width_bits=32 * d.preferred_vector_width_float,
                            local_memory_bytes=d.local_mem_size, max_program_lanes=d.max_work_group_size,
                            compute_units=d.max_compute_units,
                            matrix_unit=None, atomics=atomics, float16=True, bfloat16=True,
                            float64="cl_khr_fp64" in ext)


class OpenCLBackend(Backend):
    name = "opencl"
    single = False

    def __init__(self) -> None:
        self._devices: dict[int, OpenCLDevice] = {}

    @functools.lru_cache(maxsize=None)
    def cl_devices(self) -> list:
        cl = _cl()
        return [d for p in cl.get_platforms() for d in p.get_devices()]

    def unavailable_reason(self) -> str | None:
        try:
            import pyopencl  # noqa: F401
        except Exception as e:
            return f"pyopencl is not installed ({type(e).__name__}: {e}); pip install kaiyuan[opencl]"
        try:
            found = self.cl_devices()
        except Exception as e:
            return f"no OpenCL platform: {type(e).__name__}: {e}"
        return None if found else "no OpenCL device on any platform"

    def device_count(self) -> int:
        return 0 if self.unavailable_reason() else len(self.cl_devices())

    def device(self, index: int = 0) -> OpenCLDevice:
        reason = self.unavailable_reason()
        if reason:
            raise DeviceError(f"opencl backend unavailable: {reason}", hint="see `kaiyuan devices`")
        if not 0 <= index < len(self.cl_devices()):
            raise DeviceError(f"there is no opencl:{index}", hint=f"opencl has {len(self.cl_devices())} device(s)")
        if index not in self._devices:
            d = self.cl_devices()[index]
            self._devices[index] = OpenCLDevice(self, index, {
                "platform": d.platform.name, "device": d.name.strip(), "version": d.version,
                "driver": d.driver_version, "compute_units": d.max_compute_units,
                "local_memory_bytes": d.local_mem_size, "max_work_group_size": d.max_work_group_size,
                "global_memory_bytes": d.global_mem_size})
        return self._devices[index]
