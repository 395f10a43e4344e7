"""The cuda backend: NVIDIA GPUs through NVRTC and the CUDA driver API (cuda-bindings).

    CudaBackend  -- one device per GPU ("cuda:0", "cuda:1", ...); absent, with the reason, when
                    cuda-bindings or the NVIDIA driver is missing or no GPU is found;
                    `offline_compiler("sm_90")` compiles for a GPU that is not here
    CudaDevice   -- a GPU: its primary context, capabilities, allocator and compiler
    CudaCompiler -- ky → ky-simt → cuda → ptx → cubin (compiler.py)
    CudaProgram  -- cuModuleLoadData + cuLaunchKernel (program.py)
"""

from __future__ import annotations

import functools

from ...runtime.backend import Backend, Capabilities, Device
from ...runtime.errors import DeviceError
from . import driver


class CudaDevice(Device):
    """One GPU. `properties` is filled from the driver when the device is opened."""

    @functools.cached_property
    def context(self) -> driver.Context:
        return driver.Context(self.index)

    @functools.cached_property
    def allocator(self):
        from .memory import CudaAllocator

        return CudaAllocator(self)

    @functools.cached_property
    def compiler(self):
        from .compiler import CudaCompiler, device_arch

        return CudaCompiler(device_arch(*self.context.compute_capability()), device=self)

    @functools.cached_property
    def capabilities(self) -> Capabilities:
        major, minor = self.context.compute_capability()
        return Capabilities(
            vector_width_bits=128,  # one thread's widest load/store (ld.global.v4.b32)
            local_memory_bytes=self.context.attribute("MAX_SHARED_MEMORY_PER_BLOCK_OPTIN"),
            max_program_lanes=self.context.attribute("MAX_THREADS_PER_BLOCK"),
            compute_units=self.context.attribute("MULTIPROCESSOR_COUNT"),
            matrix_unit="tensor-core" if major >= 7 else None,
            float16=True,
            bfloat16=major >= 8,
            float64=True,
        )


def _describe(dev: CudaDevice) -> dict:
    from . import nvrtc

    ctx = dev.context
    major, minor = ctx.compute_capability()
    return {"name": ctx.name(), "compute_capability": f"{major}.{minor}", "arch": f"sm_{major}{minor}",
            "memory_gib": round(ctx.total_memory() / 2**30, 1),
            "multiprocessors": ctx.attribute("MULTIPROCESSOR_COUNT"),
            "driver": driver.driver_version(), "nvrtc": nvrtc.version()}


class CudaBackend(Backend):
    name = "cuda"
    single = False

    def __init__(self):
        self._devices: dict[int, CudaDevice] = {}

    def unavailable_reason(self) -> str | None:
        return driver.unavailable_reason()

    def device_count(self) -> int:
        if self.unavailable_reason():
            return 0
        return driver.call(driver.api().cuDeviceGetCount)

    def device(self, index: int = 0) -> CudaDevice:
        reason = self.unavailable_reason()
        if reason:
            raise DeviceError(f"cuda is not available: {reason}",
                              hint="ky.compile(kernel, target='cuda:sm_90', ...) still compiles without a GPU")
        if index not in self._devices:
            dev = CudaDevice(self, index)
            dev.properties = _describe(dev)
            self._devices[index] = dev
        return self._devices[index]

    def offline_compiler(self, target: str):
        """A compiler for architecture `target` ("sm_90", "sm_80", ...) that needs no GPU."""
        from .compiler import CudaCompiler, offline_arch

        return CudaCompiler(offline_arch(target), device=None)
