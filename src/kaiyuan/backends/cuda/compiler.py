"""The cuda compiler: `ky` IR → CUDA C (shared SIMT emitter) → PTX and cubin (NVRTC).

    1. ky       (ir)     verify the frontend's module
    2. ky-simt  (ir)     check every op is one the SIMT emitter supports (IR unchanged)
    3. cuda     (text)   CUDA C++ from `emit_simt` with the CUDA dialect; the launch layout goes
                         into meta["cuda"] (kernel name, lanes, shared bytes, parameters, asserts)
    4. ptx      (text)   NVRTC for the target architecture
    5. cubin    (binary) the cubin NVRTC made with that PTX ("sm_XX"); for a GPU newer than this
                         NVRTC knows the target is "compute_XX" and the binary is the PTX itself,
                         which the driver compiles when the module is loaded

A compiler made by `CudaBackend.offline_compiler("sm_90")` has no device: it runs the same stages
and its `load` returns None (nothing to launch on).
"""

from __future__ import annotations

import functools
import hashlib
from math import prod
from pathlib import Path

from ...ir.ky import shape_of
from ...ir.text import verify_module
from ...runtime.backend import Compiler, Program, Stage
from ...runtime.errors import UnsupportedError
from . import nvrtc

MIN_LANES, MAX_LANES = 32, 256
ELEMENTS_PER_LANE = 8  # a tile of N elements gets about N / 8 threads: enough loads in flight


def _func(module):
    return next(op for op in module.ops if op.name == "func.func")


def choose_lanes(func_op) -> int:
    """Threads per program: a power of two from the largest tile (a warp at least, 256 at most)."""
    largest = max([prod(shape_of(r.type)) for op in func_op.walk() for r in op.results], default=1)
    want = max(1, largest // ELEMENTS_PER_LANE)
    lanes = MIN_LANES
    while lanes < want and lanes < MAX_LANES:
        lanes *= 2
    return lanes


class _Build:
    """The state one compilation's stages share: the CUDA source and the cubin NVRTC produced
    along with the PTX (one NVRTC run gives both)."""

    def __init__(self, arch: str, options: dict):
        self.arch, self.options = arch, options
        self.source = self.cubin = None

    def verify(self, module, meta):
        verify_module(module, filename=str(meta.get("name", "<ir>")))
        return module

    def check(self, module, meta):
        from ...compiler.simt import check_supported

        check_supported(_func(module), "cuda")
        return module

    def emit(self, module, meta):
        from ...compiler.simt import emit_simt
        from .dialect import CudaDialect
        from .stmt_expr import lower_statement_expressions

        func = _func(module)
        lanes = int(self.options.get("lanes") or choose_lanes(func))
        dialect = CudaDialect(lanes)
        simt = emit_simt(func, dialect, lanes)
        meta["cuda"] = {**simt.to_meta(), "smem_bytes": dialect.smem_bytes, "arch": self.arch}
        self.source = lower_statement_expressions(simt.source)
        return self.source

    def ptx(self, source, meta):
        ptx, self.cubin = nvrtc.compile_cuda(source, meta.get("name", "kernel"), self.arch)
        return ptx

    def binary(self, ptx, meta):
        if not self.arch.startswith("sm_"):
            return ptx.encode() + b"\0"
        if self.cubin is None:  # stages run one by one from outside: compile again
            self.cubin = nvrtc.compile_cuda(self.source, meta.get("name", "kernel"), self.arch)[1]
        return self.cubin


class CudaCompiler(Compiler):
    """Compiles for one architecture; `device` is None for offline compilation."""

    def __init__(self, arch: str, device=None):
        self.arch = arch
        self.device = device
        self.target = f"cuda:{arch}"

    def stages(self, options: dict) -> list[Stage]:
        build = _Build(self.arch, options)
        return [
            Stage("ky", "ir", build.verify),
            Stage("ky-simt", "ir", build.check),
            Stage("cuda", "text", build.emit),
            Stage("ptx", "text", build.ptx),
            Stage("cubin", "binary", build.binary),
        ]

    def load(self, binary: bytes, meta: dict) -> Program | None:
        if self.device is None:
            return None  # compiled offline for a GPU that is not here
        from .program import CudaProgram

        return CudaProgram(self.device, binary, meta)

    def toolchain_version(self) -> str:
        """NVRTC's version and flags, and a hash of the shared emitter's sources: the cache key
        hashes only this package's folder, and a changed SIMT emitter must not reuse a cubin."""
        return f"nvrtc-{nvrtc.version()} {' '.join(nvrtc.FLAGS)} simt-{_emitter_fingerprint()}"


@functools.cache
def _emitter_fingerprint() -> str:
    from ...compiler import cfamily, simt

    h = hashlib.sha256()
    for package in (simt, cfamily):
        for path in sorted(Path(package.__file__).parent.glob("*")):
            if path.suffix in (".py", ".h"):
                h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def offline_arch(target: str) -> str:
    """"sm_90" (PTX and cubin) or "compute_90" (PTX only: the binary is the PTX, which the driver
    compiles for whatever GPU of that generation or newer loads it), checked against what this
    NVRTC supports. "sm90" and "90" mean "sm_90"."""
    t = target.lower()
    kind = "compute" if t.startswith("compute") else "sm"
    digits = t.removeprefix(kind).lstrip("_")
    if not digits.isdigit():
        raise UnsupportedError(f"unknown CUDA target {target!r}", hint="write an architecture: 'cuda:sm_90', "
                                                                       "'cuda:sm_80', or 'cuda:compute_90' for PTX only")
    supported = nvrtc.supported_archs()
    if int(digits) not in supported:
        raise UnsupportedError(f"NVRTC {nvrtc.version()} cannot compile for {kind}_{digits}",
                               hint="supported: " + ", ".join(f"sm_{a}" for a in supported))
    return f"{kind}_{digits}"


def device_arch(major: int, minor: int) -> str:
    """The NVRTC target for a GPU of compute capability major.minor: its own cubin when NVRTC
    knows it, else PTX of the newest architecture NVRTC knows that the GPU can run."""
    cc = major * 10 + minor
    supported = nvrtc.supported_archs()
    if cc in supported:
        return f"sm_{cc}"
    older = [a for a in supported if a <= cc]
    if not older:
        raise UnsupportedError(f"NVRTC {nvrtc.version()} cannot generate code for this GPU (sm_{cc})",
                               hint="supported: " + ", ".join(f"sm_{a}" for a in supported))
    return f"compute_{max(older)}"
