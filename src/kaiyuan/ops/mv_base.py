"""What the data-movement and indexing operator definitions share: dtype checks, axis and
constant-input reading for `infer`, and the start of every `run` (device context, operands as
bit-width views).

Every movement operator accepts all 13 kaiyuan dtypes: it moves bits, never computes on them.
"""

from __future__ import annotations

from math import prod

import numpy as np

from ..runtime.errors import ArgumentError, DeviceAssertError, UnsupportedError
from ..runtime.tensor import Tensor, contiguous_strides
from ._common import Context, Operand
from .mv_copy import View, bits, copy, operand
from .schema import TensorType

ALL_DTYPES = ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
              "float16", "bfloat16", "float32", "float64")
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
INDEX_DTYPES = ("int32", "int64")
INT64 = np.dtype(np.int64)


def check_dtype(op: str, t: TensorType, supported=ALL_DTYPES, what: str = "input") -> None:
    """UnsupportedError naming the op and the supported dtypes when t's dtype is not one."""
    name = np.dtype(t.dtype).name
    if name not in supported:
        raise UnsupportedError(f"{op}: {what} has dtype {name}, which {op} does not support",
                               hint=f"supported dtypes: {', '.join(supported)}")


def norm_axis(op: str, axis: int, rank: int, what: str = "axis") -> int:
    """axis in [-rank, rank) made non-negative; ArgumentError otherwise."""
    axis = int(axis)
    if not -rank <= axis < rank:
        raise ArgumentError(f"{op}: {what} {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def norm_axes(op: str, axes, rank: int) -> list[int]:
    """Distinct axes made non-negative."""
    out = [norm_axis(op, a, rank) for a in axes]
    if len(set(out)) != len(out):
        raise ArgumentError(f"{op}: axes {list(axes)} repeat an axis")
    return out


def ints(op: str, consts, i: int, what: str, required: bool = True) -> list[int] | None:
    """The constant input i as a list of Python ints (None if absent and optional)."""
    v = consts[i] if i < len(consts) else None
    if v is None:
        if required:
            raise UnsupportedError(f"{op}: input {i} ({what}) must be a constant known when the model is compiled",
                                   hint="make it an initializer or a Constant node")
        return None
    v = np.asarray(v)
    if v.dtype.kind not in "iu":
        raise ArgumentError(f"{op}: {what} must be an integer tensor, got {v.dtype}")
    return [int(a) for a in v.reshape(-1)]


def same_type(t: TensorType, shape) -> TensorType:
    return TensorType(np.dtype(t.dtype), tuple(int(d) for d in shape))


def np_dtype(a) -> np.dtype:
    """The numpy dtype of a numpy array or ky.Tensor."""
    return a.dtype.np if isinstance(a, Tensor) else np.dtype(a.dtype)


def is_float(dt) -> bool:
    return np.dtype(dt).name in FLOAT_DTYPES


def numel(a) -> int:
    """Element count of a numpy array or ky.Tensor."""
    return int(prod(a.shape))


def begin(op: str, inputs, outputs) -> Context:
    """The device context of a `run` (from its arrays; the default device for numpy ones)."""
    return Context(op, [a for a in list(inputs) + list(outputs) if a is not None])


def relayout(op: str, inputs, outputs) -> None:
    """Output 0 = input 0's elements in row-major order (the `run` of every reshaping view:
    it only runs when the planner could not alias, e.g. for a non-contiguous input)."""
    ctx = begin(op, inputs[:1], outputs[:1])
    x, y = operand(ctx, inputs[0], "input"), operand(ctx, outputs[0], "output")
    if prod(x.shape) != prod(y.shape):
        raise ArgumentError(f"{op}: output has {prod(y.shape)} elements, input {prod(x.shape)}")
    copy(ctx, x.shape, View(x.obj, 0, x.strides), View(y.obj, 0, contiguous_strides(x.shape)), op)


def launching(op: str, fn) -> None:
    """Run a launch; a failed index assertion is re-raised naming the operator."""
    try:
        fn()
    except DeviceAssertError as e:
        raise DeviceAssertError(f"{op}: {e.message}", loc=e.loc,
                                hint="every index must lie in [-dim, dim) of the dim it indexes") from None


def dense_operand(ctx: Context, x: Operand) -> Operand:
    """x itself when contiguous, else a contiguous copy (a temporary on x's device, with x's real
    dtype) — for kernels that index a tensor as (outer, dim, inner) blocks."""
    if tuple(x.strides) == contiguous_strides(x.shape) or prod(x.shape) == 0:
        return x
    t = ctx.output(x.shape, x.dtype).obj
    copy(ctx, x.shape, View(bits(x.obj), 0, x.strides), View(bits(t), 0, contiguous_strides(x.shape)))
    return Operand(t, x.shape, contiguous_strides(x.shape), x.dtype, x.name)
