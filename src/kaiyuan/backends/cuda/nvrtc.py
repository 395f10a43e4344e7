"""CUDA C → PTX and cubin through NVRTC (PyPI `nvidia-cuda-nvrtc`, via `cuda-bindings`).

NVRTC needs no GPU and no driver, so this module is what lets `ky.compile(k, target="cuda:sm_90")`
work on any machine. One `nvrtcCompileProgram` for a real architecture (`sm_90`) yields both the
PTX and the cubin; `compile_cuda` returns both (the compiler's `ptx` stage keeps the cubin for the
`cubin` stage that follows, so nothing compiles twice).

The wheel ships no CUDA headers (no cuda_fp16.h): the generated code includes none and brings its
own fp16/bf16 helpers (prelude.cuh).
"""

from __future__ import annotations

from ...runtime.errors import ToolchainError

# -O3 is NVRTC's default for device code. No fast math: kaiyuan's float semantics are IEEE
# (division and sqrt correctly rounded, denormals kept), as on the other backends; FMA
# contraction stays on, as in nvcc (the conformance tolerances allow it).
FLAGS = ("-std=c++17", "--device-as-default-execution-space")

def _api():
    try:
        from cuda.bindings import nvrtc
    except ImportError as e:
        raise ToolchainError("NVRTC is not available: cuda-bindings is not installed",
                             hint="pip install 'kaiyuan[cuda]' (cuda-bindings, nvidia-cuda-nvrtc)") from e
    return nvrtc


def _check(nvrtc, result, what: str):
    err = result[0]
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise ToolchainError(f"NVRTC {what} failed: {getattr(err, 'name', err)}",
                             hint="is nvidia-cuda-nvrtc installed next to cuda-bindings?")
    return result[1] if len(result) == 2 else result[1:]


def version() -> str:
    nvrtc = _api()
    major, minor = _check(nvrtc, nvrtc.nvrtcVersion(), "version")
    return f"{major}.{minor}"


def supported_archs() -> list[int]:
    """Compute capabilities this NVRTC can generate code for, e.g. [75, 80, 86, 89, 90, ...]."""
    nvrtc = _api()
    return list(_check(nvrtc, nvrtc.nvrtcGetSupportedArchs(), "supported archs"))


def compile_cuda(source: str, name: str, arch: str) -> tuple[str, bytes | None]:
    """(PTX text, cubin bytes or None) of `source` for `arch` ("sm_90": PTX and cubin;
    "compute_90": PTX only, for a GPU newer than this NVRTC knows, JIT-compiled by the driver)."""
    nvrtc = _api()
    prog = _check(nvrtc, nvrtc.nvrtcCreateProgram(source.encode(), f"{name}.cu".encode(), 0, [], []),
                  "program creation")
    try:
        opts = [f"--gpu-architecture={arch}".encode(), *(f.encode() for f in FLAGS)]
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise ToolchainError(f"NVRTC could not compile kernel {name} for {arch}:\n{_log(nvrtc, prog)}",
                                 hint="this is a kaiyuan code-generation bug; please report it with the "
                                      "KAIYUAN_DUMP output (the .cu file)")
        ptx = _read(nvrtc, prog, nvrtc.nvrtcGetPTXSize, nvrtc.nvrtcGetPTX).rstrip(b"\0").decode()
        cubin = None
        if arch.startswith("sm_"):
            cubin = _read(nvrtc, prog, nvrtc.nvrtcGetCUBINSize, nvrtc.nvrtcGetCUBIN)
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    return ptx, cubin


def _read(nvrtc, prog, size_fn, get_fn) -> bytes:
    n = _check(nvrtc, size_fn(prog), "size query")
    buf = b" " * n
    _check(nvrtc, (get_fn(prog, buf)[0], None), "output")
    return buf


def _log(nvrtc, prog) -> str:
    n = _check(nvrtc, nvrtc.nvrtcGetProgramLogSize(prog), "log size")
    buf = b" " * n
    nvrtc.nvrtcGetProgramLog(prog, buf)
    return buf.rstrip(b"\0").decode(errors="replace")
