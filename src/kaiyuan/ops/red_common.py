"""What the reduction-family operator definitions share: dtype tables, the accumulator type and
identity of each combiner, axis reading for `infer`, and the start of every `run`.

dtype names in the OpDefs are numpy's (schema.py); kernels get kaiyuan's short names ("fp32").
"""

from __future__ import annotations

import numpy as np

from ..runtime.dtypes import dtype as to_dtype
from ..runtime.errors import ArgumentError, UnsupportedError
from ._common import Context, Operand
from .schema import TensorType

FLOATS = ("float32", "float64", "float16", "bfloat16")
INTS32_64 = ("int32", "int64", "uint32", "uint64")
INTS8 = ("int8", "uint8")
NUMERIC = FLOATS + INTS32_64 + INTS8 + ("int16", "uint16")
INT64 = np.dtype(np.int64)
NUM_OUTPUTS = "_num_outputs"  # attribute the graph engine fills with a node's output count


def check_dtype(op: str, t: TensorType, supported: tuple, what: str = "input") -> None:
    name = np.dtype(t.dtype).name
    if name not in supported:
        raise UnsupportedError(f"{op}: {what} has dtype {name}, which {op} does not support",
                               hint=f"supported dtypes: {', '.join(supported)}")


def acc_type(kname: str) -> str:
    """The accumulator of a kaiyuan dtype: fp32 for the narrow floats, fp64 for fp64, the type
    itself for integers (ONNX reduces integers in their own type), u8 for bool."""
    return {"fp16": "fp32", "bf16": "fp32", "i1": "u8"}.get(kname, kname)


def lowest(kname: str):
    """The smallest value of a type (the identity of max)."""
    d = to_dtype(kname)
    if d.is_floating:
        return float("-inf")
    if d.kind == "bool":
        return 0
    return int(np.iinfo(d.np).min)


def highest(kname: str):
    d = to_dtype(kname)
    if d.is_floating:
        return float("inf")
    if d.kind == "bool":
        return 1
    return int(np.iinfo(d.np).max)


def norm_axis(op: str, axis, rank: int, what: str = "axis") -> int:
    axis = int(axis)
    if not -rank <= axis < max(rank, 1):
        raise ArgumentError(f"{op}: {what} {axis} is out of range for an input of rank {rank}")
    return axis % rank if rank else 0


def norm_axes(op: str, axes, rank: int) -> list[int]:
    out = [norm_axis(op, a, rank, "axis") for a in axes]
    if len(set(out)) != len(out):
        raise ArgumentError(f"{op}: axes {list(axes)} repeat an axis")
    return sorted(out)


def const_ints(op: str, consts, types, i: int, what: str) -> list[int] | None:
    """Input i as a list of ints: None when the optional input is absent; UnsupportedError when
    it is present but not a constant known at plan time."""
    if i >= len(types) or types[i] is None:
        return None
    v = consts[i] if i < len(consts) else None
    if v is None:
        raise UnsupportedError(f"{op}: input {i} ({what}) must be a constant known when the model is compiled",
                               hint="make it an initializer or a Constant node")
    v = np.asarray(v)
    if v.dtype.kind not in "iu":
        raise ArgumentError(f"{op}: {what} must be an integer tensor, got {v.dtype}")
    return [int(a) for a in v.reshape(-1)]


def begin(op: str, inputs, outputs) -> tuple[Context, list, list]:
    """The device context and operands of a `run` (None stays None)."""
    ctx = Context(op, [a for a in list(inputs) + list(outputs) if a is not None])
    ins = [None if a is None else ctx.operand(a, f"input {i}") for i, a in enumerate(inputs)]
    outs = [None if a is None else ctx.operand(a, f"output {i}") for i, a in enumerate(outputs)]
    return ctx, ins, outs


def as_shape(x: Operand, shape, strides) -> Operand:
    return Operand(x.obj, tuple(shape), tuple(strides), x.dtype, x.name)


def scalar_view(x: Operand) -> Operand:
    """A 0-d operand seen as one element of shape (1,)."""
    return x if x.ndim else as_shape(x, (1,), (0,))


def scratch(like, shape, kname: str):
    """Uninitialised contiguous memory of kaiyuan dtype `kname` on `like`'s device (numpy for
    numpy inputs)."""
    from ..runtime.factories import empty
    from ..runtime.tensor import Tensor

    if isinstance(like, Tensor):
        return empty(tuple(shape), kname, like.device)
    return np.empty(tuple(shape), to_dtype(kname).np)
