"""The system C compiler: find it, describe it, turn C text into shared-object bytes, load them.

The compiler is looked up at run time ($CC, then cc, gcc, clang). Flags are fixed and part of the
cache key: -O3 -march=native for the host's vector ISA, -fopenmp for the grid loop and `omp simd`,
-fno-math-errno so sqrt/floor vectorise, -fno-trapping-math (kernels never read the FP exception
flags; with trapping math gcc will not if-convert a float compare that follows a load, so a
max-pool window loop stayed scalar: the ResNet stem's pool 5.8 -> 1.5 ms; values are unchanged),
and -ffp-contract=off so a*b+c rounds twice as numpy does (the dot micro-kernels ask for the FMA
instruction explicitly). No -ffast-math: NaN and inf must behave. -fno-loop-unroll-and-jam: gcc 12's unroll-and-jam at -O3 -march=native (Zen 4)
miscompiles the lane-blocked reductions (an outer block loop around an `omp simd` lane loop that
carries per-lane accumulators): layer_norm over rows of 320-768 elements returned garbage. The
pass buys nothing for these loops; tests/ops/test_norms_activations.py keeps the shapes that
showed it.

`KAIYUAN_CPU_ISA` narrows the vector path of the dot micro-kernels (dot.py) below what
-march=native offers: `generic` (portable GNU vector code, 16-byte vectors) or `avx2` (the AVX2/FMA
path on an AVX-512 machine); `native` or unset: the best the target has. It becomes a -D flag, so
it is part of the flags and of the cache key.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
import tempfile

from ...runtime.errors import ToolchainError

FLAGS = ["-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off",
         "-fno-loop-unroll-and-jam", "-std=gnu11", "-w"]
ISA_MACROS = {"__SSE4_2__": "sse4.2", "__AVX__": "avx", "__AVX2__": "avx2", "__FMA__": "fma", "__F16C__": "f16c",
              "__AVX512F__": "avx512f", "__AVX512BW__": "avx512bw", "__AVX512VL__": "avx512vl",
              "__AVX512BF16__": "avx512bf16", "__AVX512FP16__": "avx512fp16", "__ARM_NEON": "neon"}


ISA_CHOICES = {"native": [], "generic": ["-DKY_ISA_GENERIC"], "avx2": ["-DKY_ISA_AVX2"]}


def flags() -> list[str]:
    """FLAGS plus the KAIYUAN_CPU_ISA choice (a ToolchainError names the valid values)."""
    isa = os.environ.get("KAIYUAN_CPU_ISA", "native").strip().lower() or "native"
    if isa not in ISA_CHOICES:
        raise ToolchainError(f"KAIYUAN_CPU_ISA={isa!r} is not one of {', '.join(ISA_CHOICES)}",
                             hint="unset it to use the best vector ISA the compiler targets")
    return FLAGS + ISA_CHOICES[isa]


def find_cc() -> str | None:
    """Path of the C compiler to use: $CC (may carry no path), then cc, gcc, clang."""
    for name in filter(None, [os.environ.get("CC"), "cc", "gcc", "clang"]):
        path = shutil.which(name)
        if path:
            return path
    return None


@functools.lru_cache(maxsize=None)
def compiler_version(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
        return (out.stdout.splitlines() or ["unknown"])[0].strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def version_string() -> str:
    cc = find_cc()
    return f"{cc} | {compiler_version(cc) if cc else 'none'} | {' '.join(flags())}"


@functools.lru_cache(maxsize=None)
def _probe(cc: str) -> str | None:
    """None when `cc` builds an OpenMP shared object here, else why not."""
    try:
        compile_c("#include <omp.h>\nint ky_probe(void) { return omp_get_max_threads(); }\n", cc=cc, keep=False)
    except ToolchainError as e:
        return f"{cc} cannot build with -fopenmp: {e.message.splitlines()[0]}"
    return None


def unavailable_reason() -> str | None:
    cc = find_cc()
    if cc is None:
        return "no C compiler found (set $CC, or install gcc or clang)"
    return _probe(cc)


@functools.lru_cache(maxsize=None)
def isa_flags(cc: str) -> tuple[str, ...]:
    """Vector ISA extensions the compiler targets with -march=native (from its predefined macros)."""
    try:
        out = subprocess.run([cc, "-march=native", "-dM", "-E", "-x", "c", os.devnull],
                             capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    defined = {line.split()[1] for line in out.splitlines() if line.startswith("#define ")}
    return tuple(v for k, v in ISA_MACROS.items() if k in defined)


def compile_c(source: str, *, name: str = "kernel", cc: str | None = None, keep: bool = True) -> bytes:
    """Compile C text to a shared object and return its bytes. On failure the C file is kept and
    named in the ToolchainError together with the compiler's first lines of stderr."""
    cc = cc or find_cc()
    if cc is None:
        raise ToolchainError("no C compiler found", hint="set $CC, or install gcc or clang")
    with tempfile.TemporaryDirectory(prefix="kaiyuan-cpu-") as tmp:
        c_path, so_path = os.path.join(tmp, f"{name}.c"), os.path.join(tmp, f"{name}.so")
        with open(c_path, "w") as f:
            f.write(source)
        try:
            res = subprocess.run([cc, *flags(), c_path, "-o", so_path, "-lm"], capture_output=True, text=True,
                                 timeout=300)
            ok, err = res.returncode == 0 and os.path.exists(so_path), res.stderr
        except (OSError, subprocess.SubprocessError) as e:
            ok, err = False, str(e)
        if ok:
            with open(so_path, "rb") as f:
                return f.read()
        where = "not kept"
        if keep:
            with tempfile.NamedTemporaryFile("w", prefix=f"kaiyuan-{name}-", suffix=".c", delete=False) as kept:
                kept.write(source)
            where = f"kept at {kept.name}"
        first = "\n".join(err.strip().splitlines()[:20]) or "(no output)"
        raise ToolchainError(f"C compiler {cc} failed on kernel {name!r}:\n{first}\nC source {where}",
                             hint="this is a bug in the cpu backend or your toolchain; report it with the C file")


def load_library(binary: bytes, prefix: str = "kaiyuan-") -> ctypes.CDLL:
    """Open shared-object bytes with ctypes: written to a temporary file that is removed at once
    (the mapping stays valid), so nothing is left behind."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".so")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(binary)
        return ctypes.CDLL(path)
    finally:
        os.unlink(path)
