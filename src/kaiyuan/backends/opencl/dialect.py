"""OpenCL C 1.2 spellings for the shared SIMT emitter (kaiyuan.compiler.simt.dialect)."""

from __future__ import annotations

from ...compiler.simt import Dialect

_TYPES = """typedef char int8_t;
typedef uchar uint8_t;
typedef short int16_t;
typedef ushort uint16_t;
typedef int int32_t;
typedef uint uint32_t;
typedef long int64_t;
typedef ulong uint64_t;
typedef ushort ky_f16;
typedef ushort ky_bf16;
#define KY_BITCAST(TD, TS, x) ({ union { TS s; TD d; } _u; _u.s = (x); _u.d; })
"""

# native atomics of OpenCL 1.2 (32-bit) and cl_khr_int64_{base,extended}_atomics (64-bit)
_ATOMIC = {"add": "add", "and": "and", "or": "or", "xor": "xor", "xchg": "xchg",
           "max": "max", "min": "min", "umax": "max", "umin": "min"}
_SIGNED = {"int32_t": "int", "int64_t": "long"}
_UNSIGNED = {"int32_t": "uint", "int64_t": "ulong"}


class OpenCLDialect(Dialect):
    name = "opencl"
    half_native = False      # cl_khr_fp16 is optional (PoCL's CPU device lacks it): halves are bits

    def __init__(self, lanes: int, float64: bool = True, int64_atomics: bool = True):
        self.lanes, self.float64, self.int64_atomics = lanes, float64, int64_atomics

    def prelude(self) -> str:
        ext = []
        if self.float64:
            ext.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable")
        if self.int64_atomics:
            ext += ["#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable",
                    "#pragma OPENCL EXTENSION cl_khr_int64_extended_atomics : enable"]
        return "\n".join(ext + [_TYPES])

    def function_qualifier(self) -> str:
        return "static inline"

    def kernel_signature(self, name: str, params: list[str]) -> str:
        return (f"__kernel __attribute__((reqd_work_group_size({self.lanes}, 1, 1))) "
                f"void {name}({', '.join(params) or 'void'})")

    def global_pointer(self, ctype: str) -> str:
        return f"__global {ctype} *"

    def pointer_params(self, k: int, ctype: str) -> tuple[list[str], list[str]]:
        return ([f"__global char *arg{k}_base", f"ulong arg{k}_off"],
                [f"__global {ctype} *arg{k} = (__global {ctype} *)(arg{k}_base + arg{k}_off);"])

    def local_array(self, ctype: str, name: str, count: int) -> str:
        return f"__local {ctype} {name}[{count}];"

    def barrier(self) -> str:
        return "barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);"

    def program_id(self, axis: int) -> str:
        return f"get_group_id({axis})"

    def num_programs(self, axis: int) -> str:
        return f"get_num_groups({axis})"

    def lane_id(self) -> str:
        return "get_local_id(0)"

    def atomic_cas(self, bits: int, ptr: str, cmp: str, val: str) -> str:
        if bits == 32:
            return f"atomic_cmpxchg((volatile __global uint *)({ptr}), {cmp}, {val})"
        return f"atom_cmpxchg((volatile __global ulong *)({ptr}), {cmp}, {val})"

    def atomic_rmw(self, kind: str, ctype: str, ptr: str, val: str) -> str | None:
        if ctype == "float" and kind == "xchg":
            return f"atomic_xchg((volatile __global float *)({ptr}), {val})"
        if ctype not in _SIGNED or kind not in _ATOMIC or (ctype == "int64_t" and not self.int64_atomics):
            return None
        t = _UNSIGNED[ctype] if kind in ("umax", "umin") else _SIGNED[ctype]
        fn = ("atomic_" if ctype == "int32_t" else "atom_") + _ATOMIC[kind]
        return f"(({ctype}){fn}((volatile __global {t} *)({ptr}), ({t})({val})))"

    def math_function(self, fn: str, ctype: str) -> str:
        return fn                    # OpenCL C overloads the libm names on float and double

    def printf_int64(self) -> tuple[str, str]:
        return "%ld", "(long)"
