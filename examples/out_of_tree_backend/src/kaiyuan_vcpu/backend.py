"""The device and the backend: what kaiyuan's registry instantiates from the entry point.

`VcpuBackend()` is created with no arguments the first time anyone lists devices; it must be
cheap and must not raise (a failure here only makes `vcpu` absent, with the reason).
"""

from __future__ import annotations

import functools
import os

import kaiyuan as ky
from kaiyuan.backends.cpu import CpuBackend

from .allocator import VcpuAllocator
from .compiler import VcpuCompiler

DEFAULT_MEMORY_MB = 4096


class VcpuDevice(ky.Device):
    @functools.cached_property
    def allocator(self) -> VcpuAllocator:
        return VcpuAllocator(self, self.properties["memory_bytes"])

    @functools.cached_property
    def compiler(self) -> VcpuCompiler:
        return VcpuCompiler()

    @property
    def is_host(self) -> bool:
        # Our memory is the process's own: numpy arrays and CPU torch tensors reach kernels
        # through VcpuAllocator.wrap_host, and tensor.numpy() is VcpuAllocator.host_view.
        return True

    @functools.cached_property
    def capabilities(self) -> ky.Capabilities:
        # Ours, not the host's: a 128-bit vector unit (the cpu device reports 256 or 512 bits on
        # an AVX machine), no on-chip memory shared by lanes, one lane per program, the FMA
        # micro-kernel as matrix unit, every atomic, all float formats.
        return ky.Capabilities(vector_width_bits=128, local_memory_bytes=0, max_program_lanes=1,
                               matrix_unit="fma-microkernel", float16=True, bfloat16=True, float64=True)


class VcpuBackend(ky.Backend):
    name = "vcpu"
    single = True  # one device, named "vcpu" (a multi-device backend answers device_count())

    def unavailable_reason(self) -> str | None:
        # We build with the cpu backend's C toolchain: absent exactly when it is.
        why = CpuBackend().unavailable_reason()
        return f"needs the cpu backend's C compiler: {why}" if why else None

    def device(self, index: int = 0) -> VcpuDevice:
        if index != 0:
            raise ky.DeviceError(f"vcpu has one device, not {index}", hint="use device 'vcpu'")
        if getattr(self, "_device", None) is None:
            mb = int(os.environ.get("KAIYUAN_VCPU_MEMORY_MB", DEFAULT_MEMORY_MB))
            self._device = VcpuDevice(self, 0, {"kind": "example out-of-tree backend", "wraps": "cpu compiler",
                                                "memory_bytes": mb << 20})
        return self._device
