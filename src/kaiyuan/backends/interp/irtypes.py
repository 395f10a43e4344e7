"""IR types as numpy dtypes, and value conversions that keep the IR's exact element types.

Scalars are numpy scalars (or 0-d arrays) and tiles numpy arrays, always of the exact dtype of
their IR type: i1 -> bool, iN -> intN (signless values are stored signed; unsigned ops view them
as uintN), f16 -> float16, bf16 -> ml_dtypes.bfloat16.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
from xdsl.dialects.builtin import BFloat16Type, Float16Type, Float32Type, Float64Type, IntegerType, TensorType

from ...ir.ky import PtrType
from ...runtime.errors import UnsupportedError

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
NARROW_FLOATS = (F16, BF16)  # computed in f32, rounded back after every op

_INTS = {1: np.dtype(np.bool_), 8: np.dtype(np.int8), 16: np.dtype(np.int16), 32: np.dtype(np.int32),
         64: np.dtype(np.int64)}
_UNSIGNED = {np.dtype(np.int8): np.dtype(np.uint8), np.dtype(np.int16): np.dtype(np.uint16),
             np.dtype(np.int32): np.dtype(np.uint32), np.dtype(np.int64): np.dtype(np.uint64),
             np.dtype(np.bool_): np.dtype(np.bool_)}
_FLOATS = {Float16Type: F16, BFloat16Type: BF16, Float32Type: F32, Float64Type: F64}


def element(t):
    return t.element_type if isinstance(t, TensorType) else t


def is_ptr(t) -> bool:
    return isinstance(element(t), PtrType)


def np_dtype(t) -> np.dtype:
    """numpy dtype of a scalar/tile type's elements (pointers: of the pointee)."""
    e = element(t)
    if isinstance(e, PtrType):
        e = e.pointee
    if isinstance(e, IntegerType) and e.width.data in _INTS:
        return _INTS[e.width.data]
    for cls, dt in _FLOATS.items():
        if isinstance(e, cls):
            return dt
    raise UnsupportedError(f"the interp backend has no numpy type for {e}")


def unsigned(dt: np.dtype) -> np.dtype:
    return _UNSIGNED[dt]


def is_float(dt: np.dtype) -> bool:
    return dt in NARROW_FLOATS or dt.kind == "f"


def compute_dtype(dt: np.dtype) -> np.dtype:
    """The dtype arithmetic on `dt` is carried out in (f16/bf16 -> f32)."""
    return F32 if dt in NARROW_FLOATS else dt


def scalar(value, dt: np.dtype):
    """A Python number as a numpy scalar of `dt`; integers wrap to the width (two's complement)."""
    if dt == np.bool_:
        return np.bool_(bool(value))
    if dt.kind == "i":
        bits = dt.itemsize * 8
        v = int(value) & ((1 << bits) - 1)
        return dt.type(v - (1 << bits) if v >= 1 << (bits - 1) else v)
    return np.array(value, dtype=dt)[()]
