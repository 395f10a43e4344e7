"""ONNX reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare, ArgMax/ArgMin.

Importing this module also registers the rest of the reduction family (red_softmax: Softmax,
LogSoftmax, Hardmax, LpNormalization; red_scan: CumSum; red_topk: TopK; red_norm: the
normalisation layers), since schema.load_all imports only this one.

Definitions (opsets 13-21)
    Reduce*     axes: an attribute before opset 18 (ReduceSum: before 13), then an optional
                constant input; keepdims (default 1); noop_with_empty_axes (with the axes input):
                no axes and noop=1 reduces over nothing, i.e. maps each element on its own
                (ReduceL1 gives |x|, ReduceSumSquare x*x, as onnx's reference does); no axes and
                noop=0 reduces over every axis. An empty reduction gives the combiner's identity:
                0 (Sum, L1, L2, SumSquare), 1 (Prod), -inf / the type's minimum (Max), +inf /
                maximum (Min), -inf (LogSum, LogSumExp), NaN (Mean of floats), 0 (Mean of ints).
    ArgMax/Min  axis (default 0), keepdims, select_last_index; int64 indices; NaN counts as the
                largest and smallest value (numpy's argmax/argmin).
dtypes
    fp32, fp64, fp16, bf16 (fp16/bf16 accumulate in fp32, one rounding at the store); int32,
    int64, uint32, uint64 accumulate in their own type (wrapping, as ONNX); ReduceMax/Min also
    int8, uint8, and bool from opset 20; ArgMax/Min every numeric type. LogSum/LogSumExp: floats.
    Mean of integers truncates toward zero; L2 of integers truncates the square root.
Kernels
    red_kernels.reduce_kernel / arg_kernel over the layout of red_layout.plan: one program per
    block of outputs, the reduced elements walked through their strides (no copies for permuted
    or strided inputs).
"""

from __future__ import annotations

from ..runtime.errors import ArgumentError
from ..runtime.tensor import contiguous_strides
from .red_common import (FLOATS, INT64, INTS8, INTS32_64, NUMERIC, acc_type, begin, check_dtype, const_ints,
                         highest, lowest, norm_axes, norm_axis, scalar_view)
from .red_kernels import arg_kernel, reduce_kernel
from .red_layout import plan
from .schema import OpDef, TensorType, register

# op: (MAP, COMB, FIN) of reduce_kernel (see red_kernels.py)
REDUCE_OPS = {
    "ReduceSum": (0, 0, 0), "ReduceMean": (0, 0, 1), "ReduceMax": (0, 2, 0), "ReduceMin": (0, 3, 0),
    "ReduceProd": (0, 1, 0), "ReduceL1": (1, 0, 0), "ReduceL2": (2, 0, 2), "ReduceLogSum": (0, 0, 3),
    "ReduceLogSumExp": (3, 0, 4), "ReduceSumSquare": (2, 0, 0),
}
FLOAT_ONLY = ("ReduceLogSum", "ReduceLogSumExp")


def reduced_strides(x_shape, axes, out_shape) -> tuple:
    """The output's stride for every dim of x: 0 on reduced dims, the contiguous output's own
    strides on the kept ones (with or without keepdims)."""
    st = contiguous_strides(tuple(out_shape))
    if len(out_shape) == len(x_shape):
        return tuple(0 if d in axes else st[d] for d in range(len(x_shape)))
    kept = iter(st)
    return tuple(0 if d in axes else next(kept) for d in range(len(x_shape)))


def reduce_into(op_type: str, input, axes, out) -> None:
    """out = op_type (a key of REDUCE_OPS) of input over `axes` (non-negative; [] maps each
    element alone). out: preallocated, contiguous, the kept shape with or without keepdims."""
    MAP, COMB, FIN = REDUCE_OPS[op_type]
    ctx, (x,), (y,) = begin(op_type, [input], [out])
    axes = sorted(axes)
    if y.ndim and not x.ndim:
        raise ArgumentError(f"{op_type}: output of rank {y.ndim} for a 0-d input")
    ys = reduced_strides(x.shape, axes, y.shape)
    if x.ndim == 0:
        x, ys = scalar_view(x), (0,)
    L = plan(op_type, x, axes, ys)
    if L.outputs == 0:
        return
    acc = acc_type(x.dtype.name)
    is_float = acc.startswith("fp")
    ident = {0: 0, 1: 1, 2: lowest(acc), 3: highest(acc)}[COMB]
    if COMB in (0, 1) and is_float:
        ident = float(ident)
    # what a masked lane loads: MAP turns it into COMB's identity (|0| = 0*0 = 0, exp(-inf) = 0)
    other = {0: ident, 1: 0.0 if is_float else 0, 2: 0.0 if is_float else 0, 3: float("-inf")}[MAP]
    reduce_kernel[L.grid](L.x.obj, y.obj, *L.args(y_strides=False), L.count, MAP=MAP, COMB=COMB, FIN=FIN,
                          IDENT=ident, OTHER=other, ACC=acc, INT=not is_float, **L.meta(y=False))


def argreduce_into(op_type: str, input, axis: int, select_last: bool, out) -> None:
    """out (int64, keepdims or not) = index of the max (ArgMax) / min (ArgMin) along `axis`."""
    ctx, (x,), (y,) = begin(op_type, [input], [out])
    ys = reduced_strides(x.shape, [axis], y.shape) if x.ndim else (0,)
    x = scalar_view(x)
    L = plan(op_type, x, [axis], ys)
    if L.outputs == 0:
        return
    is_min = op_type == "ArgMin"
    acc = acc_type(x.dtype.name)
    arg_kernel[L.grid](L.x.obj, y.obj, *L.args(y_strides=False), MIN=is_min, LAST=bool(select_last), ACC=acc,
                       WORST=highest(acc) if is_min else lowest(acc), **L.meta(y=False))


# ----------------------------------------------------------------------------- definitions
def _axes(op: str, rank: int, attrs, consts, types, from_input: bool) -> list[int]:
    axes = const_ints(op, consts, types, 1, "axes") if from_input else attrs.get("axes")
    if not axes:
        return [] if attrs.get("noop_with_empty_axes", 0) else list(range(rank))
    return norm_axes(op, axes, rank)


def _reduce_def(op: str, since: int, until: int, from_input: bool, dtypes: tuple) -> OpDef:
    def infer(types, attrs, consts):
        x = types[0]
        check_dtype(op, x, dtypes)
        axes = _axes(op, x.rank, attrs, consts, types, from_input)
        keep = attrs["keepdims"] != 0
        shape = tuple(1 if d in axes else n for d, n in enumerate(x.shape) if keep or d not in axes)
        return [TensorType(x.dtype, shape)]

    def run(inputs, attrs, consts, outputs):
        types = [None if a is None else TensorType(a.dtype, tuple(a.shape)) for a in inputs]
        reduce_into(op, inputs[0], _axes(op, len(inputs[0].shape), attrs, consts, types, from_input), outputs[0])

    attrs = {"keepdims": 1}
    attrs.update({"noop_with_empty_axes": 0} if from_input else {"axes": None})
    return OpDef(op, infer, run, since=since, until=until, inputs=(1, 2 if from_input else 1), attrs=attrs,
                 dtypes=dtypes, value_inputs=(1,) if from_input else (),
                 doc="axes input" if from_input else "axes attribute")


def _register_reductions() -> None:
    for op in REDUCE_OPS:
        dtypes = FLOATS if op in FLOAT_ONLY else FLOATS + INTS32_64
        if op in ("ReduceMax", "ReduceMin"):
            dtypes = FLOATS + INTS32_64 + INTS8
        if op == "ReduceSum":
            register(_reduce_def(op, 13, 10**9, True, dtypes))
            continue
        register(_reduce_def(op, 13, 17, False, dtypes))
        if op in ("ReduceMax", "ReduceMin"):
            register(_reduce_def(op, 18, 19, True, dtypes))
            register(_reduce_def(op, 20, 10**9, True, dtypes + ("bool",)))
        else:
            register(_reduce_def(op, 18, 10**9, True, dtypes))


def _arg_def(op: str) -> OpDef:
    def infer(types, attrs, consts):
        x = types[0]
        check_dtype(op, x, NUMERIC)
        axis = norm_axis(op, attrs["axis"], x.rank)
        if x.rank and x.shape[axis] == 0:
            raise ArgumentError(f"{op}: axis {attrs['axis']} of input {tuple(x.shape)} is empty")
        keep = attrs["keepdims"] != 0
        shape = tuple(1 if d == axis else n for d, n in enumerate(x.shape) if keep or d != axis)
        return [TensorType(INT64, shape)]

    def run(inputs, attrs, consts, outputs):
        x = inputs[0]
        axis = norm_axis(op, attrs["axis"], len(x.shape))
        argreduce_into(op, x, axis, attrs["select_last_index"], outputs[0])

    return OpDef(op, infer, run, since=13, attrs={"axis": 0, "keepdims": 1, "select_last_index": 0},
                 dtypes=NUMERIC, doc="index of the max/min along axis")


_register_reductions()
register(_arg_def("ArgMax"))
register(_arg_def("ArgMin"))

from . import red_norm, red_scan, red_softmax, red_topk  # noqa: E402,F401  (they register the rest of the family)
