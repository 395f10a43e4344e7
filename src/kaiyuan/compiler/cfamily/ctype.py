"""C types of IR types, and the conversions between storage and compute types.

Shared by the C-family emitters (cpu's C, the SIMT emitter's OpenCL C / CUDA C). A `CTypes`
says how one flavour of C spells them; the module-level functions are the default flavour, the
cpu backend's: f16 is `_Float16` storage, bf16 `uint16_t` storage (ky_bf16); both compute in
float and round back on every op that produces them. i1 is `_Bool`. `!ky.ptr<T>` is `T *`.

A flavour whose compiler has no `_Float16` sets `half="emulated"`: f16 is then `ky_f16`
(uint16_t storage) converted by the prelude's `ky_h2f`/`ky_f2h`, like bf16. `pointer` spells a
pointer type (address-space qualifiers), `math` names libm functions (see `CTypes.math`).
"""

from __future__ import annotations

from typing import Callable

from xdsl.dialects.builtin import BFloat16Type, Float16Type, Float32Type, Float64Type, IntegerType

from ...ir.ky import PtrType, element_of
from ...runtime.errors import UnsupportedError

# f32 math that the cpu prelude implements in vectorisable C (prelude.h), instead of libm
MATH_F32_OWN = {"exp": "ky_expf", "exp2": "ky_exp2f", "log": "ky_logf", "log2": "ky_log2f", "erf": "ky_erff",
                "tanh": "ky_tanhf"}


def width(elem) -> int:
    if isinstance(elem, IntegerType):
        return elem.width.data
    if isinstance(elem, (Float16Type, BFloat16Type)):
        return 16
    if isinstance(elem, Float32Type):
        return 32
    if isinstance(elem, Float64Type):
        return 64
    return 64  # pointers


def is_float(elem) -> bool:
    return isinstance(elem, (Float16Type, BFloat16Type, Float32Type, Float64Type))


def is_half(elem) -> bool:
    return isinstance(elem, (Float16Type, BFloat16Type))


def _cpu_math(fn: str, ctype: str) -> str:
    if ctype == "float":
        return MATH_F32_OWN.get(fn, fn + "f")
    return fn


class CTypes:
    """How one flavour of C spells IR types and math functions.

    half:    "native" (`_Float16`, C casts convert) or "emulated" (`ky_f16` bits, ky_h2f/ky_f2h)
    pointer: ctype of the pointee → ctype of a pointer to it ("float" → "float *")
    math:    (libm double name, "float" | "double") → the function to call
    backend: the backend named in UnsupportedError messages
    """

    def __init__(self, half: str = "native", pointer: Callable[[str], str] | None = None,
                 math: Callable[[str, str], str] | None = None, backend: str = "cpu"):
        self.half = half
        self.pointer = pointer or (lambda c: c + " *")
        self.math = math or _cpu_math
        self.backend = backend

    def ctype(self, t) -> str:
        """Storage C type of a scalar type or of a tile's element."""
        e = element_of(t)
        if isinstance(e, PtrType):
            return self.pointer(self.ctype(e.pointee))
        if isinstance(e, IntegerType):
            w = e.width.data
            if w == 1:
                return "_Bool"
            if w in (8, 16, 32, 64):
                return f"int{w}_t"
        if isinstance(e, Float16Type):
            return "_Float16" if self.half == "native" else "ky_f16"
        if isinstance(e, BFloat16Type):
            return "ky_bf16"
        if isinstance(e, Float32Type):
            return "float"
        if isinstance(e, Float64Type):
            return "double"
        raise UnsupportedError(f"type {e} is not supported by the {self.backend} backend")

    def utype(self, t) -> str:
        """Unsigned C type of the same width (the bit pattern)."""
        w = width(element_of(t))
        return "_Bool" if w == 1 else f"uint{w}_t"

    def compute_type(self, t) -> str:
        e = element_of(t)
        return "float" if is_half(e) else self.ctype(e)

    def to_compute(self, expr: str, t) -> str:
        e = element_of(t)
        if isinstance(e, Float16Type):
            return f"((float)({expr}))" if self.half == "native" else f"ky_h2f({expr})"
        if isinstance(e, BFloat16Type):
            return f"ky_bf2f({expr})"
        return expr

    def from_compute(self, expr: str, t) -> str:
        e = element_of(t)
        if isinstance(e, Float16Type):
            return f"((_Float16)({expr}))" if self.half == "native" else f"ky_f2h({expr})"
        if isinstance(e, BFloat16Type):
            return f"ky_f2bf({expr})"
        return expr

    def fsuffix(self, t) -> str:
        """libm suffix: f for float (and halves, computed in float), none for double."""
        return "" if isinstance(element_of(t), Float64Type) else "f"

    def float_literal(self, v: float, t) -> str:
        if v != v:
            s = "NAN"
        elif v in (float("inf"), float("-inf")):
            s = "INFINITY" if v > 0 else "(-INFINITY)"
        else:
            s = float(v).hex()
        return self.from_compute(f"(({self.compute_type(t)}){s})", t)

    def int_literal(self, v: int, t) -> str:
        w = width(element_of(t))
        if w == 1:
            return "1" if v & 1 else "0"
        return f"(({self.ctype(t)})0x{v & ((1 << w) - 1):x}ULL)"


CPU = CTypes()
ctype, utype, compute_type = CPU.ctype, CPU.utype, CPU.compute_type
to_compute, from_compute, fsuffix = CPU.to_compute, CPU.from_compute, CPU.fsuffix
float_literal, int_literal = CPU.float_literal, CPU.int_literal
