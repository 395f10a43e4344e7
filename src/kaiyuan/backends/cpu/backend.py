"""The cpu backend: kernels become C, built by the system C compiler, run with OpenMP.

    CpuBackend  -- present when a C compiler that can build with -fopenmp is found
    CpuDevice   -- the host; buffers are host memory (HostAllocator), is_host is True
    CpuCompiler -- the stage list below, and load() of the .so bytes
"""

from __future__ import annotations

import functools
import os

from ...ir.text import verify_module
from ...runtime.backend import Backend, Capabilities, Compiler, Device, Program, Stage
from ...runtime.errors import DeviceError
from ..host import HostAllocator
from . import toolchain
from .emit_c import emit_c
from .program import CpuProgram
from .support import check_supported


def _func(module):
    return next(op for op in module.ops if op.name == "func.func")


def _verify(module, meta):
    """1. ky: the frontend's module, verified against the IR's rules."""
    verify_module(module, filename=meta.get("name", "<ir>"))
    return module


def _prepare(module, meta):
    """2. ky-cpu: every op is one the C emitter knows (UnsupportedError naming the op and its line
    otherwise). The IR is unchanged: tiling for C is decided while emitting (fusion.py)."""
    check_supported(_func(module))
    return module


def _emit(module, meta):
    """3. c: the C translation unit (emit_c.py)."""
    return emit_c(_func(module))[0]


def _build(source, meta):
    """4. so: the shared object's bytes, from the system C compiler (toolchain.py)."""
    return toolchain.compile_c(source, name=meta.get("name", "kernel"))


class CpuCompiler(Compiler):
    target = "cpu"

    def stages(self, options: dict) -> list[Stage]:
        return [
            Stage("ky", "ir", _verify),
            Stage("ky-cpu", "ir", _prepare),
            Stage("c", "text", _emit),
            Stage("so", "binary", _build),
        ]

    def load(self, binary: bytes, meta: dict) -> Program:
        return CpuProgram(binary, meta)

    def toolchain_version(self) -> str:
        return toolchain.version_string()


class CpuDevice(Device):
    @functools.cached_property
    def allocator(self):
        return HostAllocator(self)

    @functools.cached_property
    def compiler(self):
        return CpuCompiler()

    @property
    def is_host(self) -> bool:
        return True

    @functools.cached_property
    def capabilities(self) -> Capabilities:
        isa = set(self.properties.get("isa", ()))
        width = 512 if "avx512f" in isa else 256 if "avx" in isa else 128 if isa & {"sse4.2", "neon"} else 0
        return Capabilities(vector_width_bits=width, matrix_unit="fma-microkernel", compute_units=omp_threads(),
                            bfloat16=True, float16=True, float64=True)


def omp_threads() -> int:
    """The OpenMP threads a launch's programs are shared among: OMP_NUM_THREADS when it is a
    positive number (its first entry), else the cores this process may run on (libgomp's default)."""
    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if first.isdigit() and int(first) > 0:
        return int(first)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class CpuBackend(Backend):
    name = "cpu"
    single = True

    def unavailable_reason(self) -> str | None:
        return toolchain.unavailable_reason()

    def device(self, index: int = 0) -> Device:
        if index != 0:
            raise DeviceError(f"cpu has one device, not {index}", hint="use device 'cpu'")
        reason = self.unavailable_reason()
        if reason:
            raise DeviceError(f"cpu backend unavailable: {reason}", hint="install gcc or clang, or set $CC")
        cc = toolchain.find_cc()
        if getattr(self, "_device", None) is None or self._device.properties["compiler_path"] != cc:
            self._device = CpuDevice(self, 0, {
                "cores": os.cpu_count(), "compiler": f"{cc} ({toolchain.compiler_version(cc)})",
                "compiler_path": cc, "isa": list(toolchain.isa_flags(cc))})
        return self._device
