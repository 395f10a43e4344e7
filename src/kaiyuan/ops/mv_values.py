"""ONNX operators whose output values are known from types and attributes: Shape, Size, Constant,
ConstantOfShape, Range.

Definition
    Shape (start/end from opset 15) and Size: int64, computed from the input's type; `run` writes
        the known values into the output (no kernel: nothing is computed).
    Constant: one of value (tensor) / value_float / value_floats / value_int / value_ints
        (sparse_value and the string forms are UnsupportedError); `run` writes it.
    ConstantOfShape: shape (constant input), value (1-element tensor attribute, default float32 0);
        `fill_kernel` writes the value's bits.
    Range: start, limit, delta (constant scalars, so the length is known when planning);
        `range_kernel` computes start + i * delta (floats in fp64 and rounded once, as numpy's
        arange does; integers in int64).
"""

from __future__ import annotations

import math

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import ArgumentError, UnsupportedError
from .mv_base import ALL_DTYPES, INT64, begin, check_dtype, ints, is_float, np_dtype
from .mv_copy import TILE, TILE_REF, bits, fill, small_array, write_values
from .schema import OpDef, TensorType, register


# ---------------------------------------------------------------- Shape, Size
def _shape_slice(x: TensorType, attrs) -> tuple:
    start, end = attrs.get("start", 0), attrs.get("end")
    return tuple(int(d) for d in x.shape[slice(int(start), None if end is None else int(end))])


def _shape_infer(types, attrs, consts):
    return [TensorType(INT64, (len(_shape_slice(types[0], attrs)),))]


def _shape_run(inputs, attrs, consts, outputs):
    write_values(outputs[0], np.array(_shape_slice(TensorType(np_dtype(inputs[0]), tuple(inputs[0].shape)), attrs),
                                       dtype=np.int64))


def _size_run(inputs, attrs, consts, outputs):
    write_values(outputs[0], np.array(math.prod(inputs[0].shape), dtype=np.int64))


register(OpDef("Shape", _shape_infer, _shape_run, since=1, until=14, doc="the input's dims (int64)"))
register(OpDef("Shape", _shape_infer, _shape_run, since=15, attrs={"start": 0, "end": None},
               doc="the input's dims [start:end] (int64)"))
register(OpDef("Size", lambda t, a, c: [TensorType(INT64, ())], _size_run, since=1, doc="element count (int64)"))


# ---------------------------------------------------------------- Constant
def tensor_value(v, op: str, what: str = "value") -> np.ndarray:
    """A tensor attribute as a numpy array (an onnx TensorProto is converted)."""
    if type(v).__name__ == "TensorProto":
        from onnx import numpy_helper

        v = numpy_helper.to_array(v)
    arr = np.asarray(v)
    check_dtype(op, TensorType(arr.dtype, arr.shape), ALL_DTYPES, what)
    return arr


_CONSTANT_FORMS = {"value": None, "value_float": np.float32, "value_floats": np.float32,
                   "value_int": np.int64, "value_ints": np.int64}


def _constant_value(attrs) -> np.ndarray:
    given = [k for k, v in attrs.items() if v is not None]
    if len(given) != 1:
        raise ArgumentError(f"Constant: exactly one value attribute must be given, got {given or 'none'}")
    name = given[0]
    if name not in _CONSTANT_FORMS:
        raise UnsupportedError(f"Constant: attribute {name!r} is not supported",
                               hint="supported: value, value_float(s), value_int(s)")
    if name == "value":
        return tensor_value(attrs[name], "Constant")
    return np.asarray(attrs[name], dtype=_CONSTANT_FORMS[name])


def _constant_infer(types, attrs, consts):
    v = _constant_value(attrs)
    return [TensorType(v.dtype, v.shape)]


register(OpDef("Constant", _constant_infer, lambda i, a, c, o: write_values(o[0], _constant_value(a)),
               since=1, inputs=(0, 0),
               attrs={k: None for k in (*_CONSTANT_FORMS, "sparse_value", "value_string", "value_strings")},
               doc="value / value_float(s) / value_int(s)"))


# ---------------------------------------------------------------- ConstantOfShape
def _cos_value(attrs) -> np.ndarray:
    v = attrs["value"]
    if v is None:
        return np.zeros((1,), np.float32)
    v = tensor_value(v, "ConstantOfShape")
    if v.size != 1:
        raise ArgumentError(f"ConstantOfShape: value must have one element, got {v.size}")
    return v.reshape(1)


def _cos_infer(types, attrs, consts):
    shape = ints("ConstantOfShape", consts, 0, "shape")
    if any(d < 0 for d in shape):
        raise ArgumentError(f"ConstantOfShape: shape {shape} has a negative dim")
    return [TensorType(_cos_value(attrs).dtype, tuple(shape))]


def _cos_run(inputs, attrs, consts, outputs):
    ctx = begin("ConstantOfShape", [], outputs)
    fill(ctx, bits(outputs[0]), bits(small_array(outputs[0], _cos_value(attrs))))


register(OpDef("ConstantOfShape", _cos_infer, _cos_run, since=9, attrs={"value": None}, value_inputs=(0,),
               doc="shape (constant); value (1-element tensor, default float32 0)"))


# ---------------------------------------------------------------- Range
RANGE_DTYPES = ("int16", "int32", "int64", "float16", "bfloat16", "float32", "float64")


@jit(do_not_specialize=("n",))
def range_kernel(y_ptr, start_ptr, delta_ptr, n, FLOAT: kl.constexpr, BLOCK: kl.constexpr):
    i = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    if FLOAT:
        v = kl.load(start_ptr).to(kl.float64) + i.to(kl.float64) * kl.load(delta_ptr).to(kl.float64)
    else:
        v = kl.load(start_ptr).to(kl.int64) + i.to(kl.int64) * kl.load(delta_ptr).to(kl.int64)
    kl.store(y_ptr + i, v, mask=i < n)


def _scalar(op, consts, i, what):
    v = consts[i] if i < len(consts) else None
    if v is None:
        raise UnsupportedError(f"{op}: input {i} ({what}) must be a constant known when the model is compiled",
                               hint="Range's length decides its output shape")
    v = np.asarray(v)
    if v.size != 1:
        raise ArgumentError(f"{op}: {what} must be a scalar, got shape {v.shape}")
    return v.reshape(()).item()


def _range_infer(types, attrs, consts):
    t = types[0]
    check_dtype("Range", t, RANGE_DTYPES)
    if any(np.dtype(u.dtype) != np.dtype(t.dtype) for u in types):
        raise ArgumentError("Range: start, limit and delta must have one dtype")
    start, limit, delta = (_scalar("Range", consts, i, w) for i, w in enumerate(("start", "limit", "delta")))
    if delta == 0:
        raise ArgumentError("Range: delta cannot be 0")
    n = max(0, math.ceil((limit - start) / delta))
    return [TensorType(np.dtype(t.dtype), (int(n),))]


def _range_run(inputs, attrs, consts, outputs):
    ctx = begin("Range", inputs, outputs)
    y = outputs[0]
    n = int(math.prod(y.shape))
    if n:
        block = TILE_REF if ctx.is_reference else TILE
        range_kernel[(-(-n // block),)](y, inputs[0], inputs[2], n, FLOAT=is_float(np_dtype(inputs[0])), BLOCK=block)


register(OpDef("Range", _range_infer, _range_run, since=11, inputs=(3, 3), dtypes=RANGE_DTYPES,
               value_inputs=(0, 1, 2), doc="start, limit, delta: constant scalars"))
