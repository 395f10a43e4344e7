"""The machine's peak fp32 FMA rate, measured with the cpu backend's own toolchain.

`peak_gflops(threads)` compiles (once per process) a C loop of 12 independent chains of vector
FMAs per thread — enough to cover the FMA latency on every current core — with the same compiler
and flags as kernels (toolchain.compile_c, so `-march=native` and KAIYUAN_CPU_ISA apply), using
the same vector type and FMA as the dot micro-kernels (dot.py's ISA header), and returns
GFLOP/s (2 flops per lane per FMA). Benchmarks divide by it to report "fraction of peak".
"""

from __future__ import annotations

import ctypes
import functools
import time

from . import toolchain
from .dot import ISA_HEADER

SOURCE = r"""
#include <stdint.h>
#include <omp.h>
""" + ISA_HEADER + r"""
#define KY_CHAINS 12
static __attribute__((noinline)) float ky_fma_loop(int64_t iters, float seed) {
    ky_vf32 acc[KY_CHAINS], x = 0.999999f - (ky_vf32){0}, y = seed - (ky_vf32){0};
#pragma GCC unroll 12
    for (int c = 0; c < KY_CHAINS; c++) acc[c] = (float)(c + 1) - (ky_vf32){0};
    for (int64_t i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int c = 0; c < KY_CHAINS; c++) acc[c] = KY_FMA_f32(acc[c], x, y);
    }
    ky_vf32 t = acc[0];
#pragma GCC unroll 12
    for (int c = 1; c < KY_CHAINS; c++) t = t + acc[c];
    float lanes[sizeof(ky_vf32) / 4], s = 0;
    __builtin_memcpy(lanes, &t, sizeof t);
    for (int l = 0; l < (int)(sizeof(ky_vf32) / 4); l++) s += lanes[l];
    return s;
}
int ky_peak_lanes(void) { return (int)(sizeof(ky_vf32) / 4); }
/* GFLOP/s over `threads` threads (0: all), each running `iters` iterations */
double ky_peak(int threads, int64_t iters, float *sink) {
    if (threads <= 0) threads = omp_get_max_threads();
    float s = 0;
    double t0 = omp_get_wtime();
    #pragma omp parallel num_threads(threads) reduction(+:s)
    s += ky_fma_loop(iters, 1e-7f);
    double t = omp_get_wtime() - t0;
    *sink = s;
    return (double)threads * iters * KY_CHAINS * 2.0 * ky_peak_lanes() / t / 1e9;
}
const char *ky_peak_isa(void) { return KY_ISA_NAME; }
"""


@functools.lru_cache(maxsize=1)
def _lib():
    lib = toolchain.load_library(toolchain.compile_c(SOURCE, name="ky_peak"), "kaiyuan-peak-")
    lib.ky_peak.restype = ctypes.c_double
    lib.ky_peak.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.POINTER(ctypes.c_float)]
    lib.ky_peak_isa.restype = ctypes.c_char_p
    return lib


def isa() -> str:
    """The vector path the dot kernels take with this toolchain (avx512, avx2, neon, generic)."""
    return _lib().ky_peak_isa().decode()


def peak_gflops(threads: int = 1, seconds: float = 0.2, repeat: int = 3) -> float:
    """Peak fp32 FMA GFLOP/s with `threads` threads (0: all cores): best of `repeat` runs of
    about `seconds` each (the best, because a shared machine only ever makes it slower)."""
    lib, sink = _lib(), ctypes.c_float()
    iters = 1 << 16
    while True:                                   # calibrate: one run of about `seconds`
        t0 = time.perf_counter()
        lib.ky_peak(threads, iters, ctypes.byref(sink))
        t = time.perf_counter() - t0
        if t >= seconds / 8 or iters >= 1 << 36:
            break
        iters *= 8
    iters = max(1, int(iters * seconds / max(t, 1e-6)))
    return max(lib.ky_peak(threads, iters, ctypes.byref(sink)) for _ in range(repeat))
