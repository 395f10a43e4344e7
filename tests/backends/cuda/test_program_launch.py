"""CudaProgram's launch against a fake driver: the parameter block cuLaunchKernel receives
(device addresses + byte offsets, scalars in the kernel's C types, f16 as bits, the assert slot),
the block size and shared memory, and a failed `ky.assert` raised from the slot's record."""

import ctypes

import numpy as np
import pytest

from kaiyuan.backends.cuda import program as program_module
from kaiyuan.backends.cuda.program import CudaProgram
from kaiyuan.runtime import dtypes
from kaiyuan.runtime.backend import Buffer, Capabilities, PointerArg, ScalarArg
from kaiyuan.runtime.errors import DeviceAssertError, LaunchError

LAYOUT = [["ptr", "!ky.ptr<f32>", "float"], ["scalar", "i32", "int32_t"], ["scalar", "f16", "uint16_t"],
          ["scalar", "f32", "float"], ["scalar", "i1", "uint8_t"]]
READ = [ctypes.c_uint64, ctypes.c_int32, ctypes.c_uint16, ctypes.c_float, ctypes.c_uint8, ctypes.c_uint64]


class FakeDriver:
    class CUfunction_attribute:
        CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8

    def __init__(self, assert_record=(-1, 0, 0, 0)):
        self.launches, self.attributes, self.record = [], [], np.array(assert_record, np.int32)

    def cuModuleLoadData(self, image):
        return "module"

    def cuModuleGetFunction(self, module, name):
        return name

    def cuFuncSetAttribute(self, fn, attr, value):
        self.attributes.append((attr, value))

    def cuMemsetD32Async(self, ptr, value, n, stream):
        pass

    def cuLaunchKernel(self, fn, gx, gy, gz, bx, by, bz, smem, stream, params, extra):
        slots = (ctypes.c_void_p * len(READ)).from_address(params)
        n = len(READ) if self.with_slot else len(READ) - 1
        values = [READ[i].from_address(slots[i]).value for i in range(n)]
        self.launches.append(((gx, gy, gz), (bx, by, bz), smem, values))

    def cuStreamSynchronize(self, stream):
        pass

    def cuMemcpyDtoHAsync(self, dst, src, n, stream):
        ctypes.memmove(dst, self.record.ctypes.data, n)

    def cuModuleUnload(self, module):
        pass


class FakeContext:
    def activate(self):
        pass

    def stream(self):
        return "stream"


class FakeAllocator:
    def address(self, buffer):
        return buffer.handle

    def alloc(self, nbytes):
        return Buffer(None, nbytes, 0x5000)


class FakeDevice:
    name, context, allocator = "cuda:0", FakeContext(), FakeAllocator()
    capabilities = Capabilities(local_memory_bytes=227 * 1024)


def make(monkeypatch, drv, smem=1024, asserts=()):
    drv.with_slot = bool(asserts)
    monkeypatch.setattr(program_module, "api", lambda: drv)
    monkeypatch.setattr(program_module, "call", lambda fn, *a, what=None: fn(*a))
    meta = {"name": "k", "cuda": {"kernel_name": "ky_k", "lanes": 128, "smem_bytes": smem, "params": LAYOUT,
                                  "asserts": [list(a) for a in asserts], "assert_slot": bool(asserts)}}
    return CudaProgram(FakeDevice(), b"\x7fELF", meta)


def args():
    buf = Buffer(None, 4096, 0x7000_0000)
    return [PointerArg(buf, 64, dtypes.BY_NAME["fp32"]), ScalarArg(-7, dtypes.BY_NAME["i32"]),
            ScalarArg(1.5, dtypes.BY_NAME["fp16"]), ScalarArg(0.25, dtypes.BY_NAME["fp32"]),
            ScalarArg(True, dtypes.BY_NAME["i1"])]


def test_parameters_grid_block_and_shared_memory(monkeypatch):
    drv = FakeDriver()
    make(monkeypatch, drv).launch((3, 2, 1), args())
    grid, block, smem, values = drv.launches[0]
    assert grid == (3, 2, 1) and block == (128, 1, 1) and smem == 1024
    assert values == [0x7000_0000 + 64, -7, int(np.float16(1.5).view(np.uint16)), 0.25, 1]
    assert drv.attributes == []                      # 1 KiB fits the default shared memory


def test_large_shared_memory_is_opted_into(monkeypatch):
    drv = FakeDriver()
    make(monkeypatch, drv, smem=96 * 1024)
    assert drv.attributes == [(8, 96 * 1024)]


def test_more_shared_memory_than_the_device_has_is_refused_at_load(monkeypatch):
    with pytest.raises(LaunchError, match="needs 300000 bytes of shared memory; cuda:0 has 232448"):
        make(monkeypatch, FakeDriver(), smem=300000)


def test_failed_assert_is_raised_from_the_slot(monkeypatch):
    drv = FakeDriver(assert_record=(0, 4, 1, 0))
    prog = make(monkeypatch, drv, asserts=[("k.py:7", "n must be positive")])
    with pytest.raises(DeviceAssertError, match=r"program \(4, 1, 0\): n must be positive") as e:
        prog.launch((5, 2, 1), args())
    assert e.value.loc == "k.py:7" and drv.launches[0][3][-1] == 0x5000


def test_grid_beyond_cuda_limits_is_a_launch_error(monkeypatch):
    with pytest.raises(LaunchError, match="exceeds CUDA's limits"):
        make(monkeypatch, FakeDriver()).launch((1, 70000, 1), args())
