"""CUDA C++ as a SIMT dialect: the words `kaiyuan.compiler.simt` asks for, spelled for NVRTC.

One kaiyuan program is one thread block of `lanes` threads (dimension x); programs are the blocks
of the grid. Choices that differ from the OpenCL dialect, and why:

- No headers: the nvidia-cuda-nvrtc wheel ships none (no stdint.h, no cuda_fp16.h), so the prelude
  declares the fixed-width integer names itself, and f16/bf16 are 16-bit storage (`half_native`
  False) converted by the shared prelude's helpers.
- Shared memory is one dynamic block (`extern __shared__ ky_smem[]`) carved into the program's
  arrays at fixed offsets: the launch passes its size, so a kernel may use more than the 48 KiB
  that static `__shared__` arrays are limited to (the Program raises the limit per kernel).
- Atomics are CUDA's native ones where they exist for the type (add/min/max/and/or/xor/exch on
  32- and 64-bit integers, add on float and double); the emitter writes CAS loops for the rest.
"""

from __future__ import annotations

from ...compiler.simt.dialect import Dialect

SMEM_ALIGN = 16

PRELUDE = r"""typedef bool _Bool;
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef uint16_t ky_f16;
typedef uint16_t ky_bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#ifndef NAN
#define NAN __int_as_float(0x7fc00000)
#endif
template <class TD, class TS> static __device__ __forceinline__ TD ky_bitcast_(TS x) {
  TD d;
  memcpy(&d, &x, sizeof d);
  return d;
}
#define KY_BITCAST(TD, TS, x) (ky_bitcast_<TD, TS>(x))
#define KY_FN static __device__ __forceinline__
/* HOOK (cuda): f16 conversions in one PTX instruction each (IEEE, round to nearest even; f64 ->
   f16 rounded once) instead of the shared prelude's integer code. Defining KY_HALF_NATIVE makes
   the shared prelude skip its ky_h2f / ky_f2h / ky_d2h; these replace exactly those three.
   ky_f16 stays uint16_t bits (the dialect's half_native is False). */
#define KY_HALF_NATIVE 1
KY_FN float ky_h2f(ky_f16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
KY_FN ky_f16 ky_f2h(float f) { ky_f16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
KY_FN ky_f16 ky_d2h(double d) { ky_f16 h; asm("cvt.rn.f16.f64 %0, %1;" : "=h"(h) : "d"(d)); return h; }
extern __shared__ __align__(16) unsigned char ky_smem[];
"""

# CUDA's native atomics: (kind, ctype) -> (function, the pointer/value type it takes). Signed
# 64-bit add/and/or/xor/exch use the unsigned overloads: two's complement gives the same bits.
_I32, _U32, _I64, _U64 = "int", "unsigned int", "long long", "unsigned long long"
_INTS = [("int32_t", _I32), ("uint32_t", _U32), ("int64_t", _U64), ("uint64_t", _U64)]
_BITWISE = {"add": "atomicAdd", "and": "atomicAnd", "or": "atomicOr", "xor": "atomicXor", "xchg": "atomicExch"}
_NATIVE = {
    **{(kind, t): (fn, c) for kind, fn in _BITWISE.items() for t, c in _INTS},
    ("fadd", "float"): ("atomicAdd", "float"),
    ("fadd", "double"): ("atomicAdd", "double"),
    ("xchg", "float"): ("atomicExch", "float"),
    **{(kind, t): (fn, c) for kind, fn in (("max", "atomicMax"), ("min", "atomicMin"))
       for t, c in (("int32_t", _I32), ("int64_t", _I64))},
    **{(kind, t): (fn, c) for kind, fn in (("umax", "atomicMax"), ("umin", "atomicMin"))
       for t, c in (("int32_t", _U32), ("uint32_t", _U32), ("int64_t", _U64), ("uint64_t", _U64))},
}


class CudaDialect(Dialect):
    name = "cuda"
    half_native = False
    float64 = True

    def __init__(self, lanes: int):
        self.lanes = lanes
        self.smem_bytes = 0  # dynamic shared memory the kernel's arrays take (set while emitting)

    def prelude(self) -> str:
        return PRELUDE

    def function_qualifier(self) -> str:
        return "static __device__ __forceinline__"

    def kernel_signature(self, name: str, params: list[str]) -> str:
        return f'extern "C" __global__ void __launch_bounds__({self.lanes}) {name}({", ".join(params)})'

    def global_pointer(self, ctype: str) -> str:
        return f"{ctype} *"

    def pointer_params(self, k: int, ctype: str) -> tuple[list[str], list[str]]:
        return [f"{ctype} *arg{k}"], []

    def local_array(self, ctype: str, name: str, count: int) -> str:
        offset = -(-self.smem_bytes // SMEM_ALIGN) * SMEM_ALIGN
        self.smem_bytes = offset + count * _sizeof(ctype)
        return f"{ctype} *const {name} = ({ctype} *)(ky_smem + {offset});"

    def barrier(self) -> str:
        return "__syncthreads();"

    def program_id(self, axis: int) -> str:
        return f"((int32_t)blockIdx.{'xyz'[axis]})"

    def num_programs(self, axis: int) -> str:
        return f"((int32_t)gridDim.{'xyz'[axis]})"

    def lane_id(self) -> str:
        return "((int32_t)threadIdx.x)"

    def atomic_cas(self, bits: int, ptr: str, cmp: str, val: str) -> str:
        t = _U32 if bits == 32 else _U64
        return f"(uint{bits}_t)atomicCAS(({t} *)({ptr}), ({t})({cmp}), ({t})({val}))"

    def atomic_rmw(self, kind: str, ctype: str, ptr: str, val: str) -> str | None:
        native = _NATIVE.get((kind, ctype))
        if native is None:
            return None
        fn, t = native
        return f"(({ctype}){fn}(({t} *)({ptr}), ({t})({val})))"


_SIZES = {"_Bool": 1, "int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "ky_f16": 2, "ky_bf16": 2,
          "int32_t": 4, "uint32_t": 4, "float": 4, "int64_t": 8, "uint64_t": 8, "double": 8}


def _sizeof(ctype: str) -> int:
    """Bytes of one element of a shared array (pointers, `float *` or the emitter's `kyp_float`
    typedefs, are 8)."""
    ctype = ctype.strip()
    return _SIZES.get(ctype, 8)
