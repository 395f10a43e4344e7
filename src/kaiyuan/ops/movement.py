"""ONNX data-movement operators: definitions (`OpDef`s) for the graph engine.

Every operator here moves elements without computing on them, so it takes every dtype and runs
on one kernel — `mv_copy.strided_copy_kernel`, a strided copy specialised only on the element's
bit width — by describing its input as a *view* (offset and strides over the output's shape):

    Reshape, Flatten, Squeeze, Unsqueeze   views (`view=True`: the planner aliases the memory);
                                           their `run` copies in row-major order, used when the
                                           input is not contiguous
    Transpose                              the input's strides permuted
    Slice                                  offset start*stride, stride*step (any step, negative too)
    Expand, Tile                           broadcast dims get stride 0 (Tile: each dim d splits
                                           into (repeat, d) with strides (0, stride))
    Concat, Split                          one copy per input / output into / from its slab
    DepthToSpace, SpaceToDepth             a transpose of a reshape: one 6-d view

Pad, Trilu, Resize, Shape/Size/Constant/ConstantOfShape/Range live in `mv_pad`, `mv_trilu`,
`mv_resize`, `mv_values` (imported at the end of this module, so importing it registers them all).

Constant inputs (a Reshape's shape, a Slice's starts...) are `value_inputs`: the graph engine
must know them when it plans, and a non-constant one is an UnsupportedError naming the input.
"""

from __future__ import annotations

from math import prod

import numpy as np

from ..runtime.errors import ArgumentError, UnsupportedError
from ..runtime.tensor import contiguous_strides
from .mv_base import ALL_DTYPES, begin, check_dtype, ints, norm_axes, norm_axis, relayout, same_type
from .mv_copy import View, copy, operand
from .schema import REQUIRED, OpDef, register

NUM_OUTPUTS = "_num_outputs"  # attribute the graph engine fills with a node's output count (Split)


def _copy_view(op, inputs, outputs, view_fn) -> None:
    """Output 0 (contiguous) = input 0 seen through view_fn(shape, strides) -> (shape, strides, offset)."""
    ctx = begin(op, inputs[:1], outputs[:1])
    x, y = operand(ctx, inputs[0], "input"), operand(ctx, outputs[0], "output")
    shape, strides, offset = view_fn(x.shape, x.strides)
    copy(ctx, shape, View(x.obj, offset, strides), View(y.obj, 0, contiguous_strides(shape)), op)


# ---------------------------------------------------------------- Reshape, Flatten, Squeeze, Unsqueeze
def _reshape_infer(allowzero_attr: bool):
    def infer(types, attrs, consts):
        x = types[0]
        check_dtype("Reshape", x)
        target = ints("Reshape", consts, 1, "shape")
        allowzero = allowzero_attr and attrs.get("allowzero", 0) == 1
        if allowzero and 0 in target and -1 in target:
            raise ArgumentError("Reshape: with allowzero=1 the shape cannot hold both 0 and -1")
        if target.count(-1) > 1:
            raise ArgumentError(f"Reshape: shape {target} has more than one -1")
        out = []
        for i, d in enumerate(target):
            if d == 0 and not allowzero:
                if i >= x.rank:
                    raise ArgumentError(f"Reshape: shape {target} copies dim {i} (0) of a rank-{x.rank} input")
                d = x.shape[i]
            elif d < -1:
                raise ArgumentError(f"Reshape: shape {target} has a negative dim")
            out.append(d)
        n = prod(x.shape)
        if -1 in out:
            rest = prod(d for d in out if d != -1)
            if rest == 0 or n % rest:
                raise ArgumentError(f"Reshape: cannot infer the -1 of {target} for an input of {n} elements")
            out[out.index(-1)] = n // rest
        if prod(out) != n:
            raise ArgumentError(f"Reshape: shape {target} ({prod(out)} elements) does not fit input {x.shape}")
        return [same_type(x, out)]
    return infer


def _flatten_infer(types, attrs, consts):
    x = types[0]
    check_dtype("Flatten", x)
    axis = int(attrs["axis"])
    if not -x.rank <= axis <= x.rank:
        raise ArgumentError(f"Flatten: axis {axis} is out of range for rank {x.rank}")
    axis = axis + x.rank if axis < 0 else axis
    return [same_type(x, (prod(x.shape[:axis]), prod(x.shape[axis:])))]


def _squeeze_infer(from_input: bool):
    def infer(types, attrs, consts):
        x = types[0]
        check_dtype("Squeeze", x)
        axes = ints("Squeeze", consts, 1, "axes", required=False) if from_input else attrs.get("axes")
        if not axes:  # absent (or empty): every size-1 dim
            return [same_type(x, [d for d in x.shape if d != 1])]
        axes = norm_axes("Squeeze", axes, x.rank)
        for a in axes:
            if x.shape[a] != 1:
                raise ArgumentError(f"Squeeze: dim {a} of {x.shape} is {x.shape[a]}, not 1")
        return [same_type(x, [d for i, d in enumerate(x.shape) if i not in axes])]
    return infer


def _unsqueeze_infer(from_input: bool):
    def infer(types, attrs, consts):
        x = types[0]
        check_dtype("Unsqueeze", x)
        axes = ints("Unsqueeze", consts, 1, "axes") if from_input else list(attrs["axes"])
        rank = x.rank + len(axes)
        axes = norm_axes("Unsqueeze", axes, rank)
        dims = iter(x.shape)
        return [same_type(x, [1 if i in axes else next(dims) for i in range(rank)])]
    return infer


def _view_op(op_type, infer, since, until=10**9, inputs=(1, 1), attrs=None, value_inputs=(), doc=""):
    register(OpDef(op_type, infer, lambda i, a, c, o: relayout(op_type, i, o), since=since, until=until,
                   inputs=inputs, attrs=attrs or {}, dtypes=ALL_DTYPES, value_inputs=value_inputs,
                   view=True, doc=doc))


_view_op("Reshape", _reshape_infer(False), 5, 13, inputs=(2, 2), value_inputs=(1,),
         doc="shape (constant): 0 copies the input's dim, -1 is inferred")
_view_op("Reshape", _reshape_infer(True), 14, inputs=(2, 2), attrs={"allowzero": 0}, value_inputs=(1,),
         doc="shape (constant); allowzero=1 makes 0 a real zero dim")
_view_op("Flatten", _flatten_infer, 1, attrs={"axis": 1}, doc="2-D: dims before axis, dims from axis")
_view_op("Squeeze", _squeeze_infer(False), 1, 12, attrs={"axes": None}, doc="axes attribute")
_view_op("Squeeze", _squeeze_infer(True), 13, inputs=(1, 2), value_inputs=(1,), doc="axes input (constant)")
_view_op("Unsqueeze", _unsqueeze_infer(False), 1, 12, attrs={"axes": REQUIRED}, doc="axes attribute")
_view_op("Unsqueeze", _unsqueeze_infer(True), 13, inputs=(2, 2), value_inputs=(1,), doc="axes input (constant)")


# ---------------------------------------------------------------- Transpose
def _perm(rank: int, attrs) -> list[int]:
    perm = attrs["perm"]
    if perm is None:
        return list(range(rank))[::-1]
    perm = [int(p) for p in perm]
    if any(not -rank <= p < rank for p in perm) or sorted(p % rank for p in perm) != list(range(rank)):
        raise ArgumentError(f"Transpose: perm {perm} is not a permutation of {rank} dims")
    return [p % rank for p in perm]


def _transpose_infer(types, attrs, consts):
    x = types[0]
    check_dtype("Transpose", x)
    return [same_type(x, [x.shape[p] for p in _perm(x.rank, attrs)])]


def _transpose_run(inputs, attrs, consts, outputs):
    def view(shape, strides):
        perm = _perm(len(shape), attrs)
        return [shape[p] for p in perm], [strides[p] for p in perm], 0
    _copy_view("Transpose", inputs, outputs, view)


register(OpDef("Transpose", _transpose_infer, _transpose_run, since=1, attrs={"perm": None}, dtypes=ALL_DTYPES,
               doc="perm (default: reversed dims)"))


# ---------------------------------------------------------------- Slice
def _slice_params(x_shape, consts) -> list[tuple[int, int, int]]:
    """(start, stop, step) per dim of x, with Python's (= the ONNX reference's) clamping rules."""
    starts = ints("Slice", consts, 1, "starts")
    ends = ints("Slice", consts, 2, "ends")
    rank = len(x_shape)
    axes = ints("Slice", consts, 3, "axes", required=False)
    axes = list(range(len(starts))) if axes is None else norm_axes("Slice", axes, rank)
    steps = ints("Slice", consts, 4, "steps", required=False) or [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ArgumentError(f"Slice: starts, ends, axes and steps have lengths "
                            f"{len(starts)}, {len(ends)}, {len(axes)}, {len(steps)}")
    params = [(0, d, 1) for d in x_shape]
    for a, s, e, st in zip(axes, starts, ends, steps):
        if st == 0:
            raise ArgumentError("Slice: a step cannot be 0")
        params[a] = slice(s, e, st).indices(x_shape[a])
    return params


def _slice_infer(types, attrs, consts):
    x = types[0]
    check_dtype("Slice", x)
    return [same_type(x, [len(range(*p)) for p in _slice_params(x.shape, consts)])]


def _slice_run(inputs, attrs, consts, outputs):
    def view(shape, strides):
        params = _slice_params(shape, consts)
        offset = sum(p[0] * s for p, s in zip(params, strides) if len(range(*p)))
        return [len(range(*p)) for p in params], [s * p[2] for p, s in zip(params, strides)], offset
    _copy_view("Slice", inputs, outputs, view)


register(OpDef("Slice", _slice_infer, _slice_run, since=10, inputs=(3, 5), dtypes=ALL_DTYPES,
               value_inputs=(1, 2, 3, 4), doc="starts, ends, axes, steps: constants; any step incl. negative"))


# ---------------------------------------------------------------- Expand, Tile
def _broadcast(op, a, b) -> tuple:
    if any(d < 0 for d in b):
        raise ArgumentError(f"{op}: shape {tuple(b)} has a negative dim")
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for p, q in zip(a, b):
        if p != q and p != 1 and q != 1:
            raise ArgumentError(f"{op}: shapes {a} and {b} do not broadcast")
        out.append(q if p == 1 else p)
    return tuple(out)


def _expand_infer(types, attrs, consts):
    x = types[0]
    check_dtype("Expand", x)
    return [same_type(x, _broadcast("Expand", x.shape, ints("Expand", consts, 1, "shape")))]


def _expand_run(inputs, attrs, consts, outputs):
    target = ints("Expand", consts, 1, "shape")

    def view(shape, strides):
        out = _broadcast("Expand", shape, target)
        k = len(out) - len(shape)
        return out, [0 if i < k or shape[i - k] == 1 else strides[i - k] for i in range(len(out))], 0
    _copy_view("Expand", inputs, outputs, view)


def _tile_infer(types, attrs, consts):
    x = types[0]
    check_dtype("Tile", x)
    reps = ints("Tile", consts, 1, "repeats")
    if len(reps) != x.rank or any(r < 0 for r in reps):
        raise ArgumentError(f"Tile: repeats {reps} must be {x.rank} non-negative ints")
    return [same_type(x, [d * r for d, r in zip(x.shape, reps)])]


def _tile_run(inputs, attrs, consts, outputs):
    reps = ints("Tile", consts, 1, "repeats")

    def view(shape, strides):  # each dim d -> (repeat, d) with strides (0, stride)
        shp = [n for r, d in zip(reps, shape) for n in (r, d)]
        return shp, [t for s in strides for t in (0, s)], 0
    _copy_view("Tile", inputs, outputs, view)


register(OpDef("Expand", _expand_infer, _expand_run, since=8, inputs=(2, 2), dtypes=ALL_DTYPES, value_inputs=(1,),
               doc="shape (constant), broadcast both ways"))
register(OpDef("Tile", _tile_infer, _tile_run, since=6, inputs=(2, 2), dtypes=ALL_DTYPES, value_inputs=(1,),
               doc="repeats (constant)"))


# ---------------------------------------------------------------- Concat, Split
def _concat_infer(types, attrs, consts):
    ts = [t for t in types if t is not None]
    x = ts[0]
    for t in ts:
        check_dtype("Concat", t)
        if np.dtype(t.dtype) != np.dtype(x.dtype):
            raise UnsupportedError(f"Concat: inputs have dtypes {np.dtype(x.dtype).name} and {np.dtype(t.dtype).name}",
                                   hint="cast them to one dtype first")
    axis = norm_axis("Concat", attrs["axis"], x.rank)
    for t in ts:
        if t.rank != x.rank or any(a != b for i, (a, b) in enumerate(zip(t.shape, x.shape)) if i != axis):
            raise ArgumentError(f"Concat: input shapes {x.shape} and {t.shape} differ outside axis {axis}")
    out = list(x.shape)
    out[axis] = sum(t.shape[axis] for t in ts)
    return [same_type(x, out)]


def _concat_run(inputs, attrs, consts, outputs):
    ctx = begin("Concat", inputs, outputs)
    y = operand(ctx, outputs[0], "output")
    axis = norm_axis("Concat", attrs["axis"], y.ndim)
    ystrides = contiguous_strides(y.shape)
    at = 0
    for i, a in enumerate(inputs):
        if a is None:
            continue
        x = operand(ctx, a, f"input {i}")
        copy(ctx, x.shape, View(x.obj, 0, x.strides), View(y.obj, at * ystrides[axis], ystrides), "Concat")
        at += x.shape[axis]


register(OpDef("Concat", _concat_infer, _concat_run, since=4, inputs=(1, 2**31 - 1), attrs={"axis": REQUIRED},
               dtypes=ALL_DTYPES, doc="axis; one copy per input into the output's slab"))


def _split_sizes(x, attrs, consts, split_input: bool) -> tuple[int, list[int]]:
    axis = norm_axis("Split", attrs["axis"], x.rank)
    dim = x.shape[axis]
    split = ints("Split", consts, 1, "split", required=False) if split_input else attrs.get("split")
    if split is not None and len(split):
        split = [int(s) for s in split]
        if sum(split) != dim or any(s < 0 for s in split):
            raise ArgumentError(f"Split: split {split} does not add up to dim {axis} ({dim})")
        return axis, split
    n = attrs.get("num_outputs")
    if n is not None:  # opset 18: ceil-sized chunks, the last one smaller
        n = int(n)
        if n < 1:
            raise ArgumentError(f"Split: num_outputs must be positive, got {n}")
        chunk = -(-dim // n)
        sizes = [min(chunk, max(0, dim - i * chunk)) for i in range(n)]
        return axis, sizes
    n = attrs.get(NUM_OUTPUTS)
    if n is None:
        raise UnsupportedError("Split: without 'split' the number of outputs must be known",
                               hint=f"the graph engine passes it as attribute {NUM_OUTPUTS!r}")
    n = int(n)
    if n < 1 or dim % n:
        raise ArgumentError(f"Split: dim {axis} ({dim}) does not split evenly into {n} outputs")
    return axis, [dim // n] * n


def _split_infer(split_input: bool):
    def infer(types, attrs, consts):
        x = types[0]
        check_dtype("Split", x)
        axis, sizes = _split_sizes(x, attrs, consts, split_input)
        return [same_type(x, x.shape[:axis] + (s,) + x.shape[axis + 1:]) for s in sizes]
    return infer


def _split_run(split_input: bool):
    def run(inputs, attrs, consts, outputs):
        ctx = begin("Split", inputs[:1], outputs)
        x = operand(ctx, inputs[0], "input")
        axis = norm_axis("Split", attrs["axis"], x.ndim)
        at = 0
        for i, o in enumerate(outputs):
            y = operand(ctx, o, f"output {i}")
            copy(ctx, y.shape, View(x.obj, at * x.strides[axis], x.strides),
                 View(y.obj, 0, contiguous_strides(y.shape)), "Split")
            at += y.shape[axis]
    return run


_SPLIT = dict(outputs=(1, 2**31 - 1), dtypes=ALL_DTYPES)
register(OpDef("Split", _split_infer(False), _split_run(False), since=2, until=12, inputs=(1, 1),
               attrs={"axis": 0, "split": None, NUM_OUTPUTS: None}, doc="split attribute", **_SPLIT))
register(OpDef("Split", _split_infer(True), _split_run(True), since=13, until=17, inputs=(1, 2), value_inputs=(1,),
               attrs={"axis": 0, NUM_OUTPUTS: None}, doc="split input (constant)", **_SPLIT))
register(OpDef("Split", _split_infer(True), _split_run(True), since=18, inputs=(1, 2), value_inputs=(1,),
               attrs={"axis": 0, "num_outputs": None, NUM_OUTPUTS: None},
               doc="split input (constant) or num_outputs", **_SPLIT))


# ---------------------------------------------------------------- DepthToSpace, SpaceToDepth
def _block(op, x, attrs) -> int:
    b = int(attrs["blocksize"])
    if x.rank != 4 or b < 1:
        raise ArgumentError(f"{op}: needs a 4-D input and blocksize >= 1, got {x.shape} and {b}")
    return b


def _d2s_infer(types, attrs, consts):
    x = types[0]
    check_dtype("DepthToSpace", x)
    b = _block("DepthToSpace", x, attrs)
    if attrs["mode"] not in ("DCR", "CRD"):
        raise UnsupportedError(f"DepthToSpace: mode {attrs['mode']!r}", hint="use 'DCR' or 'CRD'")
    n, c, h, w = x.shape
    if c % (b * b):
        raise ArgumentError(f"DepthToSpace: channels {c} are not a multiple of blocksize**2 ({b * b})")
    return [same_type(x, (n, c // (b * b), h * b, w * b))]


def _d2s_run(inputs, attrs, consts, outputs):
    b, dcr = int(attrs["blocksize"]), attrs["mode"] == "DCR"

    def view(shape, st):  # output (n, c', h, b, w, b) read from channel (b, b, c') [DCR] or (c', b, b) [CRD]
        n, c, h, w = shape
        cc = c // (b * b)
        if dcr:
            s_c, s_bh, s_bw = st[1], b * cc * st[1], cc * st[1]
        else:
            s_c, s_bh, s_bw = b * b * st[1], b * st[1], st[1]
        return (n, cc, h, b, w, b), (st[0], s_c, st[2], s_bh, st[3], s_bw), 0
    _copy_view("DepthToSpace", inputs, outputs, view)


def _s2d_infer(types, attrs, consts):
    x = types[0]
    check_dtype("SpaceToDepth", x)
    b = _block("SpaceToDepth", x, attrs)
    n, c, h, w = x.shape
    if h % b or w % b:
        raise ArgumentError(f"SpaceToDepth: spatial dims {h}x{w} are not multiples of blocksize {b}")
    return [same_type(x, (n, c * b * b, h // b, w // b))]


def _s2d_run(inputs, attrs, consts, outputs):
    b = int(attrs["blocksize"])

    def view(shape, st):  # output (n, bh, bw, c, h', w') read from x (n, c, h', bh, w', bw)
        n, c, h, w = shape
        return (n, b, b, c, h // b, w // b), (st[0], st[2], st[3], st[1], b * st[2], b * st[3]), 0
    _copy_view("SpaceToDepth", inputs, outputs, view)


register(OpDef("DepthToSpace", _d2s_infer, _d2s_run, since=1, attrs={"blocksize": REQUIRED, "mode": "DCR"},
               dtypes=ALL_DTYPES, doc="mode DCR or CRD"))
register(OpDef("SpaceToDepth", _s2d_infer, _s2d_run, since=1, attrs={"blocksize": REQUIRED}, dtypes=ALL_DTYPES))


from . import mv_pad, mv_resize, mv_trilu, mv_values  # noqa: E402,F401  (they register their operators)
