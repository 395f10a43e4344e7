"""A loaded kernel: cuModuleLoadData of the cubin (or PTX), launched with cuLaunchKernel.

One kaiyuan program is one block of `lanes` threads; the grid is the program grid. Parameters
follow the layout the SIMT emitter recorded in meta["cuda"]["params"]: a device address per
pointer, one value per scalar (f16/bf16 as their bits, i1 as a byte), then the assert slot.

A launch runs on the calling thread's CUDA stream (driver.Context.stream: one per kaiyuan stream)
and returns when the kernel has finished, as the backend contract asks of `launch`. kaiyuan's
streams and events are therefore exact without any device-side bookkeeping: work of different
kaiyuan streams still overlaps on the GPU (each has its own CUDA stream), and results in host
arrays are visible as soon as the launch returns.
"""

from __future__ import annotations

import ctypes
import threading
import weakref

import ml_dtypes
import numpy as np

from ...runtime.backend import PointerArg, Program
from ...runtime.errors import ArgumentError, DeviceAssertError, LaunchError
from .driver import api, call

STATIC_SMEM_LIMIT = 48 * 1024  # beyond this a kernel must opt in to more dynamic shared memory
MAX_GRID = (2**31 - 1, 65535, 65535)

_CTYPES = {"_Bool": ctypes.c_uint8, "int8_t": ctypes.c_int8, "uint8_t": ctypes.c_uint8,
           "int16_t": ctypes.c_int16, "uint16_t": ctypes.c_uint16, "int32_t": ctypes.c_int32,
           "uint32_t": ctypes.c_uint32, "int64_t": ctypes.c_int64, "uint64_t": ctypes.c_uint64,
           "float": ctypes.c_float, "double": ctypes.c_double}


def _scalar_converter(ir_type: str, ctype: str):
    """ScalarArg → the ctypes value the kernel parameter takes."""
    ct = _CTYPES[ctype]
    if ir_type == "f16":
        return lambda a: ct(int(np.array(a.value, np.float16).view(np.uint16)))
    if ir_type == "bf16":
        return lambda a: ct(int(np.array(a.value, ml_dtypes.bfloat16).view(np.uint16)))
    if ctype in ("float", "double"):
        return lambda a: ct(float(a.value))
    bits = ctypes.sizeof(ct) * 8
    return lambda a: ct(int(a.value) & ((1 << bits) - 1))


class CudaProgram(Program):
    def __init__(self, device, binary: bytes, meta: dict):
        info = meta["cuda"]
        self.device, self.context, self.allocator = device, device.context, device.allocator
        self.name = meta.get("name", info["kernel_name"])
        self.lanes, self.smem = int(info["lanes"]), int(info["smem_bytes"])
        self.params = [tuple(p) for p in info["params"]]
        self.asserts = info["asserts"]
        self.assert_slot = bool(info["assert_slot"])
        limit = device.capabilities.local_memory_bytes
        if self.smem > limit:
            raise LaunchError(f"kernel {self.name} needs {self.smem} bytes of shared memory; {device.name} has "
                              f"{limit} per block", hint="use smaller tiles (BLOCK sizes) for this kernel")
        self.context.activate()
        drv = api()
        self.module = call(drv.cuModuleLoadData, binary, what=f"loading kernel {self.name}")
        self.function = call(drv.cuModuleGetFunction, self.module, info["kernel_name"].encode())
        if self.smem > STATIC_SMEM_LIMIT:
            call(drv.cuFuncSetAttribute, self.function,
                 drv.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, self.smem,
                 what=f"kernel {self.name} needs {self.smem} bytes of shared memory")
        self._scalars = [_scalar_converter(p[1], p[2]) if p[0] == "scalar" else None for p in self.params]
        self._slots = threading.local()  # one assert slot per thread: streams may launch concurrently
        weakref.finalize(self, _unload, self.context, self.module)

    def launch(self, grid, args) -> None:
        values = self._values(args)
        slot = self._assert_slot() if self.assert_slot else None
        if slot is not None:
            values.append(ctypes.c_uint64(slot))
        self._launch(grid, values, slot)

    def bind(self, grid, args):
        """The launch with its parameter values converted once (a captured launch's replay)."""
        values = self._values(args)
        slot = self._assert_slot() if self.assert_slot else None
        if slot is not None:
            values.append(ctypes.c_uint64(slot))
        return lambda: self._launch(grid, values, slot)

    def _values(self, args) -> list:
        if len(args) != len(self.params):
            raise ArgumentError(f"kernel {self.name} takes {len(self.params)} arguments, got {len(args)}")
        values = []
        for param, convert, a in zip(self.params, self._scalars, args):
            if param[0] == "ptr":
                if type(a) is not PointerArg:
                    raise ArgumentError(f"kernel {self.name}: expected a pointer argument, got {a!r}")
                try:
                    values.append(ctypes.c_uint64(self.allocator.address(a.buffer) + a.offset))
                except ValueError as e:
                    raise ArgumentError(f"kernel {self.name}: {e}") from None
            else:
                values.append(convert(a))
        return values

    def _launch(self, grid, values: list, slot) -> None:
        if any(g > m for g, m in zip(grid, MAX_GRID)):
            raise LaunchError(f"kernel {self.name}: grid {tuple(grid)} exceeds CUDA's limits {MAX_GRID}",
                              hint="put the large dimension first (axis 0 allows 2**31 - 1 programs)")
        drv = api()
        stream = self.context.stream()
        if slot is not None:
            call(drv.cuMemsetD32Async, slot, 0xFFFFFFFF, 1, stream)
        pointers = (ctypes.c_void_p * max(1, len(values)))(*[ctypes.addressof(v) for v in values])
        call(drv.cuLaunchKernel, self.function, grid[0], grid[1], grid[2], self.lanes, 1, 1, self.smem,
             stream, ctypes.addressof(pointers), 0, what=f"launching kernel {self.name}")
        call(drv.cuStreamSynchronize, stream, what=f"kernel {self.name}")
        if slot is not None:
            self._check_assert(slot, stream)

    def _assert_slot(self) -> int:
        slot = getattr(self._slots, "address", None)
        if slot is None:
            block = self.allocator.alloc(16)
            self._slots.block, slot = block, block.handle  # the block lives as long as the thread
            self._slots.address = slot
        return slot

    def _check_assert(self, slot: int, stream) -> None:
        record = np.empty(4, np.int32)
        call(api().cuMemcpyDtoHAsync, record.ctypes.data, slot, 16, stream)
        call(api().cuStreamSynchronize, stream)
        op = int(record[0])
        if op >= 0:
            loc, msg = self.asserts[op] if op < len(self.asserts) else (None, "assertion failed")
            raise DeviceAssertError(f"device assertion failed in program {tuple(int(v) for v in record[1:])}: {msg}",
                                    loc=loc)


def _unload(context, module) -> None:
    try:
        context.activate()
        api().cuModuleUnload(module)
    except Exception:  # at interpreter exit the driver may be gone already
        pass
