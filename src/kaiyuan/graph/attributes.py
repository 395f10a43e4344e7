"""Plain Python values and numpy dtypes ↔ the MLIR attributes and types of the graph IR.

ONNX attributes map onto builtin attributes: ints → `i64`, floats → `f32`, strings → string
attributes, lists → arrays, tensors → `dense<...>`. Element types keep their signedness (the graph
level is not signless, unlike the tile level): int8 → `i8`, uint8 → `ui8`, bool → `i1`,
bfloat16 → `bf16`. Dense data is stored as the raw bytes of the array (xDSL's layout: little-endian hosts), so
conversion is exact.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    ArrayAttr,
    BFloat16Type,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    NoneType,
    Signedness,
    StringAttr,
    TensorType,
    UnrankedTensorType,
    f32,
    i64,
)
from xdsl.ir import Attribute

from ..runtime.errors import UnsupportedError

_FLOATS = {
    np.dtype(np.float16): Float16Type(),
    np.dtype(ml_dtypes.bfloat16): BFloat16Type(),
    np.dtype(np.float32): Float32Type(),
    np.dtype(np.float64): Float64Type(),
}
_INTS = {np.dtype(f"int{n}"): IntegerType(n) for n in (8, 16, 32, 64)}
_UINTS = {np.dtype(f"uint{n}"): IntegerType(n, Signedness.UNSIGNED) for n in (8, 16, 32, 64)}
_TO_ELEMENT = {**_FLOATS, **_INTS, **_UINTS, np.dtype(np.bool_): IntegerType(1)}
SUPPORTED_DTYPES = tuple(d.name for d in _TO_ELEMENT)


def element_type(dtype) -> Attribute:
    """The IR element type of a numpy dtype; UnsupportedError for strings, complex, float8..."""
    dt = np.dtype(dtype)
    if dt not in _TO_ELEMENT:
        raise UnsupportedError(f"dtype {dt} is not supported by the graph engine",
                               hint=f"supported: {', '.join(SUPPORTED_DTYPES)}")
    return _TO_ELEMENT[dt]


def numpy_dtype(elem: Attribute) -> np.dtype:
    """The numpy dtype of an IR element type (signless and signed integers are signed)."""
    for dt, e in _FLOATS.items():
        if e == elem:
            return dt
    if isinstance(elem, IntegerType):
        bits = elem.width.data
        if bits == 1:
            return np.dtype(np.bool_)
        kind = "uint" if elem.signedness.data == Signedness.UNSIGNED else "int"
        if bits in (8, 16, 32, 64):
            return np.dtype(f"{kind}{bits}")
    raise UnsupportedError(f"element type {elem} has no numpy dtype in the graph engine")


def tensor_type(dtype, shape) -> Attribute:
    """`tensor<...>` for a dtype and a shape whose entries are ints, or str/None for `?`;
    shape None is an unranked `tensor<*x...>`."""
    elem = element_type(dtype)
    if shape is None:
        return UnrankedTensorType(elem)
    return TensorType(elem, [int(d) if isinstance(d, (int, np.integer)) and d >= 0 else DYNAMIC_INDEX for d in shape])


def type_shape(t: Attribute) -> tuple | None:
    """A tensor type's shape with None for each `?`; None when unranked or not a tensor."""
    if not isinstance(t, TensorType):
        return None
    return tuple(None if d < 0 else d for d in t.get_shape())


def type_dtype(t: Attribute) -> np.dtype | None:
    """A tensor type's numpy dtype (None for `none`, the type of an absent optional value)."""
    if isinstance(t, (TensorType, UnrankedTensorType)):
        return numpy_dtype(t.element_type)
    return None


def is_static(t: Attribute) -> bool:
    shape = type_shape(t)
    return shape is not None and all(d is not None for d in shape)


def is_none_type(t: Attribute) -> bool:
    return isinstance(t, NoneType)


# ------------------------------------------------------------------------------ dense ↔ numpy


def dense(array) -> DenseIntOrFPElementsAttr:
    """A `dense<...>` attribute holding exactly `array`'s values (dtype and shape kept)."""
    a = np.asarray(array)  # tobytes() is in C order whatever the strides (ascontiguousarray would make 0-d 1-d)
    t = TensorType(element_type(a.dtype), list(a.shape))
    raw = a.astype(np.uint8).tobytes() if a.dtype == np.bool_ else a.tobytes()
    return DenseIntOrFPElementsAttr(t, BytesAttr(raw))


def dense_array(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    """The numpy array a `dense<...>` attribute holds (a fresh, writable array)."""
    t = attr.get_type()
    dt = numpy_dtype(t.element_type)
    shape = tuple(t.get_shape())
    raw = attr.data.data
    if dt == np.bool_:
        return (np.frombuffer(raw, np.uint8) != 0).reshape(shape)
    return np.frombuffer(raw, dt).reshape(shape).copy()


def needs_hex(attr: DenseIntOrFPElementsAttr) -> bool:
    """Whether a dense float attribute holds NaN or infinity: xDSL prints those elements as hex
    integers that its parser reads back as numbers, so the printer writes the raw bytes instead."""
    t = attr.get_type()
    if not isinstance(t.element_type, tuple(type(e) for e in _FLOATS.values())):
        return False
    return not np.isfinite(dense_array(attr).astype(np.float64)).all()


# ------------------------------------------------------------------ attribute ↔ Python value


def to_attr(value, where: str = "") -> Attribute:
    """An attribute for a plain Python value (see the module docstring for the mapping)."""
    if isinstance(value, (bool, int, np.integer)):
        return IntegerAttr(int(value), i64)
    if isinstance(value, (float, np.floating)):
        return FloatAttr(float(value), f32)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsupportedError(f"{where}string attribute {value[:20]!r} is not UTF-8") from None
    if isinstance(value, str):
        return StringAttr(value)
    if isinstance(value, np.ndarray):
        return dense(value)
    if isinstance(value, (list, tuple)):
        return ArrayAttr([to_attr(v, where) for v in value])
    raise UnsupportedError(f"{where}attribute value of type {type(value).__name__} is not supported")


def from_attr(attr: Attribute):
    """The plain Python value of an attribute (int, float, str, list or np.ndarray)."""
    if isinstance(attr, IntegerAttr):
        return int(attr.value.data)
    if isinstance(attr, FloatAttr):
        return float(attr.value.data)
    if isinstance(attr, StringAttr):
        return attr.data
    if isinstance(attr, ArrayAttr):
        return [from_attr(a) for a in attr.data]
    if isinstance(attr, DenseIntOrFPElementsAttr):
        return dense_array(attr)
    raise UnsupportedError(f"attribute {attr} has no plain Python value in the graph engine")
