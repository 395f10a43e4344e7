"""ONNX indexing operators: Gather, GatherElements, GatherND, OneHot (here), ScatterND and
ScatterElements (`mv_scatter`, imported at the end), NonZero (an UnsupportedError).

Definition
    Gather(data, indices, axis=0): y[a, i, b] = data[a, indices[i], b] (i over indices' dims).
    GatherElements(data, indices, axis=0): y[p] = data[p with p[axis] = indices[p]].
    GatherND(data, indices, batch_dims=0): each indices[..., :] row of length K picks data's next
        K dims after the batch dims; y = the remaining slice.
    OneHot(indices, depth, values=[off, on], axis=-1): on where the (wrapped) index equals the
        position along the new axis, else off; indices of any numeric dtype, depth a constant.
    Indices are int32 or int64; a negative index counts from the end.
Out-of-range indices
    ONNX leaves them undefined. Here the kernels check each index with `kl.device_assert` before
    any load, so the launch fails with DeviceAssertError (KY-E220) naming the op. Indices are
    ordinary (run-time) inputs, so no host check is possible. The kernels also clamp, so a
    backend that compiles assertions out still never reads outside the data.
dtypes
    data: every dtype (moved as bits of its width); OneHot's values any dtype.
Kernels
    `indexed_copy_kernel` (Gather, GatherElements): the output, up to 6 dims after merging, is
    tiled R x C like the strided copy; data is read through strides where the indexed dim has
    stride 0 and the loaded index times that dim's stride is added. `gather_nd_kernel`: rows of
    index tuples x columns of the slice (contiguous data; a strided input is copied first), the
    K components summed in a run-time loop. `one_hot_kernel`: (outer, depth, inner) tiles.
"""

from __future__ import annotations

from math import prod

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import ArgumentError, UnsupportedError
from ..runtime.tensor import contiguous_strides
from ._common import collapse
from .mv_base import ALL_DTYPES, INDEX_DTYPES, begin, check_dtype, dense_operand, launching, norm_axis, same_type
from .mv_copy import RANK, bits, operand, row_offset, small_array, tile
from .schema import OpDef, TensorType, register

_IC_INTS = ("x_off", "i_off", "y_off", "n_rows", "N", "D1", "D2", "D3", "D4", "s0", "s1", "s2", "s3", "s4", "s5",
            "t0", "t1", "t2", "t3", "t4", "t5", "s_ax", "dim")


@jit(do_not_specialize=_IC_INTS)
def indexed_copy_kernel(x_ptr, i_ptr, y_ptr, x_off, i_off, y_off, n_rows, N, D1, D2, D3, D4,
                        s0, s1, s2, s3, s4, s5, t0, t1, t2, t3, t4, t5, s_ax, dim,
                        ROW_INDEX: kl.constexpr, X_UNIT: kl.constexpr, R: kl.constexpr, C: kl.constexpr):
    """Contiguous y[c] = x[x_off + sum c_k s_k + wrap(i[i_off + sum c_k t_k]) * s_ax].
    ROW_INDEX: the index is the same along the column dim (t5 == 0: Gather's rows, e.g. an
    embedding lookup), so it is loaded once per row and rows are copied as contiguous runs."""
    rows = kl.program_id(0) * R + kl.arange(0, R)
    cols = kl.program_id(1) * C + kl.arange(0, C)
    xr = x_off + row_offset(rows, D1, D2, D3, D4, s0, s1, s2, s3, s4)
    ir = i_off + row_offset(rows, D1, D2, D3, D4, t0, t1, t2, t3, t4)
    rmask = rows < n_rows
    mask = rmask[:, None] & (cols < N)[None, :]
    if ROW_INDEX:
        idx = kl.load(i_ptr + ir, mask=rmask)
        kl.device_assert(((idx >= -dim) & (idx < dim)) | ~rmask, "index out of range")
        idx = kl.where(idx < 0, idx + dim, idx)
        idx = kl.minimum(kl.maximum(idx, 0), dim - 1)
        xrow = (xr + idx * s_ax)[:, None]
    else:
        idx = kl.load(i_ptr + ir[:, None] + cols[None, :] * t5, mask=mask)
        kl.device_assert(((idx >= -dim) & (idx < dim)) | ~mask, "index out of range")
        idx = kl.where(idx < 0, idx + dim, idx)
        idx = kl.minimum(kl.maximum(idx, 0), dim - 1)
        xrow = xr[:, None] + idx * s_ax
    if X_UNIT:
        v = kl.load(x_ptr + xrow + cols[None, :], mask=mask)
    else:
        v = kl.load(x_ptr + xrow + cols[None, :] * s5, mask=mask)
    kl.store(y_ptr + y_off + rows[:, None] * N + cols[None, :], v, mask=mask)


def indexed_copy(ctx, shape, x, xs, ind, ins, s_ax: int, dim: int, y, op: str) -> None:
    """y (contiguous, `shape`) from x (bits) through strides xs and indices `ind` through ins."""
    if prod(shape) == 0:
        return
    if dim == 0:
        raise ArgumentError(f"{op}: cannot index into an empty dim")
    ys = contiguous_strides(shape)
    shp, (sx, si, sy) = collapse(tuple(shape), tuple(xs), tuple(ins), ys)
    lead = max(0, len(shp) - RANK)
    inner = shp[lead:]
    k = RANK - len(inner)
    dims = (1,) * k + tuple(inner)
    pad = lambda st: (0,) * k + tuple(st[lead:])  # noqa: E731
    n_rows, n = prod(dims[:5]), dims[5]
    r, c = tile(ctx, n_rows, n)
    grid = (-(-n_rows // r), -(-n // c))
    for idx in np.ndindex(*shp[:lead]):
        xo = sum(a * b for a, b in zip(idx, sx))
        io = sum(a * b for a, b in zip(idx, si))
        yo = sum(a * b for a, b in zip(idx, sy))
        launching(op, lambda: indexed_copy_kernel[grid](x, ind, y, xo, io, yo, n_rows, n, *dims[1:5], *pad(sx),
                                                        *pad(si), s_ax, dim,
                                                        ROW_INDEX=si[-1] == 0 or n == 1, X_UNIT=sx[-1] == 1,
                                                        R=r, C=c))


# ---------------------------------------------------------------- Gather
def _gather_infer(types, attrs, consts):
    x, i = types[0], types[1]
    check_dtype("Gather", x)
    check_dtype("Gather", i, INDEX_DTYPES, "indices")
    axis = norm_axis("Gather", attrs["axis"], x.rank)
    return [same_type(x, x.shape[:axis] + tuple(i.shape) + x.shape[axis + 1:])]


def _gather_run(inputs, attrs, consts, outputs):
    ctx = begin("Gather", inputs, outputs)
    x, i, y = operand(ctx, inputs[0], "data"), ctx.operand(inputs[1], "indices"), operand(ctx, outputs[0], "output")
    axis = norm_axis("Gather", attrs["axis"], x.ndim)
    q, rest = i.ndim, x.ndim - axis - 1
    xs = x.strides[:axis] + (0,) * q + x.strides[axis + 1:]
    ins = (0,) * axis + tuple(i.strides) + (0,) * rest
    indexed_copy(ctx, y.shape, x.obj, xs, i.obj, ins, x.strides[axis], x.shape[axis], y.obj, "Gather")


register(OpDef("Gather", _gather_infer, _gather_run, since=1, inputs=(2, 2), attrs={"axis": 0}, dtypes=ALL_DTYPES,
               doc="axis; indices int32/int64, negative from the end"))


# ---------------------------------------------------------------- GatherElements
def _ge_infer(types, attrs, consts):
    x, i = types[0], types[1]
    check_dtype("GatherElements", x)
    check_dtype("GatherElements", i, INDEX_DTYPES, "indices")
    axis = norm_axis("GatherElements", attrs["axis"], x.rank)
    if i.rank != x.rank or any(a > b for d, (a, b) in enumerate(zip(i.shape, x.shape)) if d != axis):
        raise ArgumentError(f"GatherElements: indices {i.shape} do not fit data {x.shape} outside axis {axis}")
    return [same_type(x, i.shape)]


def _ge_run(inputs, attrs, consts, outputs):
    ctx = begin("GatherElements", inputs, outputs)
    x, i, y = operand(ctx, inputs[0], "data"), ctx.operand(inputs[1], "indices"), operand(ctx, outputs[0], "output")
    axis = norm_axis("GatherElements", attrs["axis"], x.ndim)
    xs = tuple(0 if d == axis else s for d, s in enumerate(x.strides))
    indexed_copy(ctx, y.shape, x.obj, xs, i.obj, i.strides, x.strides[axis], x.shape[axis], y.obj, "GatherElements")


register(OpDef("GatherElements", _ge_infer, _ge_run, since=11, inputs=(2, 2), attrs={"axis": 0}, dtypes=ALL_DTYPES,
               doc="axis; indices int32/int64 of data's rank"))


# ---------------------------------------------------------------- GatherND
@jit(do_not_specialize=("n_rows", "M", "K", "S", "batch_stride"))
def gather_nd_kernel(x_ptr, i_ptr, t_ptr, y_ptr, n_rows, M, K, S, batch_stride,
                     R: kl.constexpr, C: kl.constexpr):
    """y[r, :] = x[(r // M) * batch_stride + sum_k wrap(i[r, k]) * stride_k + :]; the table t
    holds K dims then K strides."""
    rows = kl.program_id(0) * R + kl.arange(0, R)
    cols = kl.program_id(1) * C + kl.arange(0, C)
    rmask = rows < n_rows
    off = (rows // M) * batch_stride
    for k in range(0, K):
        d = kl.load(t_ptr + k)
        v = kl.load(i_ptr + rows * K + k, mask=rmask).to(kl.int64)
        kl.device_assert(((v >= -d) & (v < d)) | ~rmask, "GatherND: index out of range")
        v = kl.where(v < 0, v + d, v)
        v = kl.minimum(kl.maximum(v, 0), d - 1)
        off = off + v * kl.load(t_ptr + K + k)
    mask = rmask[:, None] & (cols < S)[None, :]
    val = kl.load(x_ptr + off[:, None] + cols[None, :], mask=mask)
    kl.store(y_ptr + rows[:, None] * S + cols[None, :], val, mask=mask)


def _gnd_shape(x: TensorType, i: TensorType, b: int) -> tuple:
    if i.rank < 1 or not 0 <= b < min(x.rank, i.rank):
        raise ArgumentError(f"GatherND: batch_dims {b} does not fit data {x.shape} and indices {i.shape}")
    k = i.shape[-1]
    if x.shape[:b] != i.shape[:b] or not 1 <= k <= x.rank - b:
        raise ArgumentError(f"GatherND: indices {i.shape} do not fit data {x.shape} with batch_dims {b}")
    return tuple(i.shape[:-1]) + tuple(x.shape[b + k:])


def _gnd_infer(types, attrs, consts):
    x, i = types[0], types[1]
    check_dtype("GatherND", x)
    check_dtype("GatherND", i, INDEX_DTYPES, "indices")
    return [same_type(x, _gnd_shape(x, i, int(attrs["batch_dims"])))]


def _gnd_run(inputs, attrs, consts, outputs):
    ctx = begin("GatherND", inputs, outputs)
    x = dense_operand(ctx, operand(ctx, inputs[0], "data"))
    i = dense_operand(ctx, ctx.operand(inputs[1], "indices"))
    y = operand(ctx, outputs[0], "output")
    if prod(y.shape) == 0:
        return
    b, k = int(attrs["batch_dims"]), i.shape[-1]
    strides = contiguous_strides(x.shape)
    table = small_array(y.obj, np.array(list(x.shape[b:b + k]) + list(strides[b:b + k]), dtype=np.int64))
    n_rows = prod(i.shape[:-1])
    m = prod(i.shape[b:-1])
    s = prod(x.shape[b + k:])
    if prod(x.shape) > 2**31 - 1 or prod(y.shape) > 2**31 - 1:
        raise UnsupportedError("GatherND: more than 2**31 elements; kernels use 32-bit offsets")
    r, c = tile(ctx, n_rows, s)
    launching("GatherND", lambda: gather_nd_kernel[(-(-n_rows // r), -(-s // c))](
        bits(x.obj), i.obj, table, y.obj, n_rows, m, k, s, prod(x.shape[b:]), R=r, C=c))


register(OpDef("GatherND", _gnd_infer, _gnd_run, since=12, inputs=(2, 2), attrs={"batch_dims": 0},
               dtypes=ALL_DTYPES, doc="batch_dims; indices int32/int64"))
register(OpDef("GatherND", _gnd_infer, _gnd_run, since=11, until=11, inputs=(2, 2), attrs={},
               dtypes=ALL_DTYPES, doc="indices int32/int64"))


# ---------------------------------------------------------------- OneHot
@jit(do_not_specialize=("n_rows", "depth", "inner"))
def one_hot_kernel(i_ptr, v_ptr, y_ptr, n_rows, depth, inner, R: kl.constexpr, C: kl.constexpr):
    """y[o, d, n] = values[1] if wrap(i[o, n]) == d else values[0]; rows are (o, d)."""
    rows = kl.program_id(0) * R + kl.arange(0, R)
    cols = kl.program_id(1) * C + kl.arange(0, C)
    o = rows // depth
    d = rows % depth
    mask = (rows < n_rows)[:, None] & (cols < inner)[None, :]
    idx = kl.load(i_ptr + (o * inner)[:, None] + cols[None, :], mask=mask)
    idx = kl.where(idx < 0, idx + depth, idx)
    hit = idx == d[:, None]
    v = kl.where(hit, kl.load(v_ptr + 1), kl.load(v_ptr))
    kl.store(y_ptr + rows[:, None] * inner + cols[None, :], v, mask=mask)


def _depth(consts) -> int:
    v = consts[1] if len(consts) > 1 else None
    if v is None:
        raise UnsupportedError("OneHot: depth must be a constant known when the model is compiled",
                               hint="its value decides the output's shape")
    v = np.asarray(v)
    if v.size != 1:
        raise ArgumentError(f"OneHot: depth must have one element, got shape {v.shape}")
    d = int(v.reshape(-1)[0])
    if d < 1:
        raise ArgumentError(f"OneHot: depth must be positive, got {d}")
    return d


def _onehot_infer(types, attrs, consts):
    i, vals = types[0], types[2]
    check_dtype("OneHot", i, tuple(d for d in ALL_DTYPES if d != "bool"), "indices")
    check_dtype("OneHot", vals, ALL_DTYPES, "values")
    if vals.shape != (2,):
        raise ArgumentError(f"OneHot: values must have shape (2,), got {vals.shape}")
    axis = norm_axis("OneHot", attrs["axis"], i.rank + 1)
    return [same_type(vals, i.shape[:axis] + (_depth(consts),) + i.shape[axis:])]


def _onehot_run(inputs, attrs, consts, outputs):
    ctx = begin("OneHot", inputs, outputs)
    i = dense_operand(ctx, ctx.operand(inputs[0], "indices"))
    v = dense_operand(ctx, ctx.operand(inputs[2], "values"))
    y = ctx.operand(outputs[0], "output")
    depth = _depth(consts)
    axis = norm_axis("OneHot", attrs["axis"], i.ndim + 1)
    outer, inner = prod(i.shape[:axis]), prod(i.shape[axis:])
    n_rows = outer * depth
    if n_rows * inner == 0:
        return
    if n_rows * inner > 2**31 - 1:
        raise UnsupportedError("OneHot: more than 2**31 elements; kernels use 32-bit offsets")
    r, c = tile(ctx, n_rows, inner)
    one_hot_kernel[(-(-n_rows // r), -(-inner // c))](i.obj, v.obj, y.obj, n_rows, depth, inner, R=r, C=c)


register(OpDef("OneHot", _onehot_infer, _onehot_run, since=11, inputs=(3, 3), attrs={"axis": -1},
               value_inputs=(1,), doc="depth (constant); values [off, on]; indices any numeric dtype"))


# ---------------------------------------------------------------- NonZero
def _nonzero_infer(types, attrs, consts):
    raise UnsupportedError("NonZero: its output shape depends on the input's values, which kaiyuan's static "
                           "plans do not support", hint="replace it, e.g. by a mask and Where, before import")


register(OpDef("NonZero", _nonzero_infer, None, since=9, doc="unsupported: data-dependent output shape"))


from . import mv_scatter  # noqa: E402,F401  (registers ScatterND, ScatterElements)
