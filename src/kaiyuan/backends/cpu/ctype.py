"""C types of IR types, and the conversions between storage and compute types.

f16 is `_Float16` storage, bf16 `uint16_t` storage (ky_bf16); both compute in float and round
back on every op that produces them. i1 is `_Bool`. `!ky.ptr<T>` is `T *`.
"""

from __future__ import annotations

from xdsl.dialects.builtin import BFloat16Type, Float16Type, Float32Type, Float64Type, IntegerType

from ...ir.ky import PtrType, element_of
from ...runtime.errors import UnsupportedError


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


def ctype(t) -> str:
    """Storage C type of a scalar type or of a tile's element."""
    e = element_of(t)
    if isinstance(e, PtrType):
        return ctype(e.pointee) + " *"
    if isinstance(e, IntegerType):
        w = e.width.data
        if w == 1:
            return "_Bool"
        if w in (8, 16, 32, 64):
            return f"int{w}_t"
    if isinstance(e, Float16Type):
        return "_Float16"
    if isinstance(e, BFloat16Type):
        return "ky_bf16"
    if isinstance(e, Float32Type):
        return "float"
    if isinstance(e, Float64Type):
        return "double"
    raise UnsupportedError(f"type {e} is not supported by the cpu backend")


def utype(t) -> str:
    """Unsigned C type of the same width (the bit pattern)."""
    w = width(element_of(t))
    return "_Bool" if w == 1 else f"uint{w}_t"


def compute_type(t) -> str:
    e = element_of(t)
    return "float" if is_half(e) else ctype(e)


def to_compute(expr: str, t) -> str:
    e = element_of(t)
    if isinstance(e, Float16Type):
        return f"((float)({expr}))"
    if isinstance(e, BFloat16Type):
        return f"ky_bf2f({expr})"
    return expr


def from_compute(expr: str, t) -> str:
    e = element_of(t)
    if isinstance(e, Float16Type):
        return f"((_Float16)({expr}))"
    if isinstance(e, BFloat16Type):
        return f"ky_f2bf({expr})"
    return expr


def fsuffix(t) -> str:
    """libm suffix: f for float (and halves, computed in float), none for double."""
    return "" if isinstance(element_of(t), Float64Type) else "f"


def float_literal(v: float, t) -> str:
    if v != v:
        s = "NAN"
    elif v in (float("inf"), float("-inf")):
        s = "INFINITY" if v > 0 else "(-INFINITY)"
    else:
        s = float(v).hex()
    return from_compute(f"(({compute_type(t)}){s})", t)


def int_literal(v: int, t) -> str:
    w = width(element_of(t))
    if w == 1:
        return "1" if v & 1 else "0"
    return f"(({ctype(t)})0x{v & ((1 << w) - 1):x}ULL)"
