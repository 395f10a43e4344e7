"""ONNX ScatterND and ScatterElements: output = a copy of data, then updates written at indices.

Definition
    ScatterND(data, indices, updates, reduction): each indices[..., :] row (length K) addresses a
        slice data[i_0, ..., i_{K-1}, ...], which becomes (or is combined with) updates[...].
    ScatterElements(data, indices, updates, axis, reduction): y[p with p[axis] = indices[p]]
        = (or combined with) updates[p] for every position p of indices.
    reduction: none (opset 11+), add, mul (16+), max, min (18+). Duplicate indices are applied in
    the order the ONNX reference applies them (row-major over indices), so the last write wins for
    none and every update is folded in for the others. Indices int32/int64, negative from the end;
    out of range: DeviceAssertError naming the op (see indexing.py).
dtypes
    every dtype for none (bits are moved); add/mul/max/min on numeric dtypes (fp16/bf16 combine in
    fp32 and round once per update, as numpy does per element), not on bool.
Kernels
    Both first copy data into the output (`strided_copy_kernel`), then run one scatter kernel with
    no atomics: `scatter_nd_kernel` walks the index rows in order inside each program, programs
    split the slice's columns; `scatter_elements_kernel` gives each lane one line along `axis`
    (different lines never share an output element) and walks that line's updates in order.
"""

from __future__ import annotations

from math import prod

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import ArgumentError, UnsupportedError
from ..runtime.tensor import contiguous_strides
from ._common import check_offsets, collapse
from .mv_base import ALL_DTYPES, INDEX_DTYPES, begin, check_dtype, dense_operand, launching, norm_axis, same_type
from .mv_copy import View, bits, copy, operand, row_offset, small_array, tile
from .schema import OpDef, register

REDUCTIONS = {"none": 0, "add": 1, "mul": 2, "max": 3, "min": 4}


@jit
def combine(old, new, RED: kl.constexpr):
    """The reduction of one update into the output's value (fp16/bf16 in fp32)."""
    if RED == 0:
        r = new
    else:
        if old.dtype == kl.float16 or old.dtype == kl.bfloat16:
            old = old.to(kl.float32)
            new = new.to(kl.float32)
        if RED == 1:
            r = old + new
        elif RED == 2:
            r = old * new
        elif RED == 3:
            r = kl.maximum(old, new)
        else:
            r = kl.minimum(old, new)
    return r


@jit(do_not_specialize=("M", "K", "S"))
def scatter_nd_kernel(y_ptr, i_ptr, u_ptr, t_ptr, M, K, S, RED: kl.constexpr, C: kl.constexpr):
    """For m in order: y[sum_k wrap(i[m, k]) * stride_k + cols] (op)= u[m, cols]; the table t
    holds K dims then K strides; y, i, u contiguous."""
    cols = kl.program_id(0) * C + kl.arange(0, C)
    cmask = cols < S
    for m in range(0, M):
        off = kl.zeros((), kl.int64)
        for k in range(0, K):
            d = kl.load(t_ptr + k)
            v = kl.load(i_ptr + m * K + k).to(kl.int64)
            kl.device_assert((v >= -d) & (v < d), "ScatterND: index out of range")
            v = kl.where(v < 0, v + d, v)
            v = kl.minimum(kl.maximum(v, 0), d - 1)
            off = off + v * kl.load(t_ptr + K + k)
        new = kl.load(u_ptr + m * S + cols, mask=cmask)
        if RED == 0:
            kl.store(y_ptr + off + cols, new, mask=cmask)
        else:
            old = kl.load(y_ptr + off + cols, mask=cmask)
            kl.store(y_ptr + off + cols, combine(old, new, RED), mask=cmask)


_SE_INTS = ("i_base", "u_base", "y_base", "n_lines", "D1", "D2", "D3", "D4", "a0", "a1", "a2", "a3", "a4",
            "b0", "b1", "b2", "b3", "b4", "c0", "c1", "c2", "c3", "c4", "n_ax", "ia", "ua", "ya", "dim")


@jit(do_not_specialize=_SE_INTS)
def scatter_elements_kernel(y_ptr, i_ptr, u_ptr, i_base, u_base, y_base, n_lines, D1, D2, D3, D4, a0, a1, a2, a3, a4,
                            b0, b1, b2, b3, b4, c0, c1, c2, c3, c4, n_ax, ia, ua, ya, dim,
                            RED: kl.constexpr, R: kl.constexpr):
    """Each lane is one line (coordinates off `axis`, strides a: indices, b: updates, c: y); it
    walks the line's n_ax updates in order: y[line + wrap(i[line, j]) * ya] (op)= u[line, j]."""
    lines = kl.program_id(0) * R + kl.arange(0, R)
    mask = lines < n_lines
    io = i_base + row_offset(lines, D1, D2, D3, D4, a0, a1, a2, a3, a4)
    uo = u_base + row_offset(lines, D1, D2, D3, D4, b0, b1, b2, b3, b4)
    yo = y_base + row_offset(lines, D1, D2, D3, D4, c0, c1, c2, c3, c4)
    for j in range(0, n_ax):
        v = kl.load(i_ptr + io + j * ia, mask=mask)
        kl.device_assert(((v >= -dim) & (v < dim)) | ~mask, "ScatterElements: index out of range")
        v = kl.where(v < 0, v + dim, v)
        v = kl.minimum(kl.maximum(v, 0), dim - 1)
        new = kl.load(u_ptr + uo + j * ua, mask=mask)
        if RED == 0:
            kl.store(y_ptr + yo + v * ya, new, mask=mask)
        else:
            old = kl.load(y_ptr + yo + v * ya, mask=mask)
            kl.store(y_ptr + yo + v * ya, combine(old, new, RED), mask=mask)


def _reduction(op: str, attrs, allowed) -> int:
    red = attrs.get("reduction", "none")
    if red not in allowed:
        raise UnsupportedError(f"{op}: reduction {red!r} is not supported at this opset",
                               hint=f"supported: {', '.join(allowed)}")
    return REDUCTIONS[red]


def _check(op: str, types, attrs, allowed):
    x, i, u = types[0], types[1], types[2]
    red = _reduction(op, attrs, allowed)
    check_dtype(op, x, ALL_DTYPES if red == 0 else tuple(d for d in ALL_DTYPES if d != "bool"), "data")
    check_dtype(op, i, INDEX_DTYPES, "indices")
    if np.dtype(u.dtype) != np.dtype(x.dtype):
        raise ArgumentError(f"{op}: updates are {np.dtype(u.dtype).name}, data {np.dtype(x.dtype).name}")
    return x, i, u, red


def _copy_data(ctx, inputs, outputs):
    x, y = operand(ctx, inputs[0], "data"), operand(ctx, outputs[0], "output")
    copy(ctx, x.shape, View(x.obj, 0, x.strides), View(y.obj, 0, contiguous_strides(y.shape)), "copy data")


# ---------------------------------------------------------------- ScatterND
def _snd_infer(allowed):
    def infer(types, attrs, consts):
        x, i, u, _ = _check("ScatterND", types, attrs, allowed)
        k = i.shape[-1] if i.rank else 0
        if i.rank < 1 or not 1 <= k <= x.rank or tuple(u.shape) != tuple(i.shape[:-1]) + tuple(x.shape[k:]):
            raise ArgumentError(f"ScatterND: indices {i.shape} and updates {u.shape} do not fit data {x.shape}")
        return [same_type(x, x.shape)]
    return infer


def _snd_run(allowed):
    def run(inputs, attrs, consts, outputs):
        ctx = begin("ScatterND", inputs, outputs)
        red = _reduction("ScatterND", attrs, allowed)
        _copy_data(ctx, inputs, outputs)
        i = dense_operand(ctx, ctx.operand(inputs[1], "indices"))
        u = dense_operand(ctx, ctx.operand(inputs[2], "updates"))
        y = ctx.operand(outputs[0], "output")
        m, k = prod(i.shape[:-1]), i.shape[-1]
        s = prod(y.shape[k:])
        if m * s == 0:
            return
        if prod(y.shape) > 2**31 - 1:
            raise UnsupportedError("ScatterND: more than 2**31 elements; kernels use 32-bit offsets")
        table = small_array(y.obj, np.array(list(y.shape[:k]) + list(contiguous_strides(y.shape)[:k]), np.int64))
        yo, uo = (y.obj, u.obj) if red else (bits(y.obj), bits(u.obj))
        _, c = tile(ctx, 1, s)
        launching("ScatterND", lambda: scatter_nd_kernel[(-(-s // c),)](yo, i.obj, uo, table, m, k, s, RED=red, C=c))
    return run


# ---------------------------------------------------------------- ScatterElements
def _se_infer(allowed):
    def infer(types, attrs, consts):
        x, i, u, _ = _check("ScatterElements", types, attrs, allowed)
        axis = norm_axis("ScatterElements", attrs["axis"], x.rank)
        if tuple(u.shape) != tuple(i.shape) or i.rank != x.rank or any(
                a > b for d, (a, b) in enumerate(zip(i.shape, x.shape)) if d != axis):
            raise ArgumentError(f"ScatterElements: indices {i.shape} and updates {u.shape} do not fit data {x.shape}")
        return [same_type(x, x.shape)]
    return infer


def _se_run(allowed):
    def run(inputs, attrs, consts, outputs):
        ctx = begin("ScatterElements", inputs, outputs)
        red = _reduction("ScatterElements", attrs, allowed)
        _copy_data(ctx, inputs, outputs)
        i, u = ctx.operand(inputs[1], "indices"), ctx.operand(inputs[2], "updates")
        y = ctx.operand(outputs[0], "output")
        axis = norm_axis("ScatterElements", attrs["axis"], y.ndim)
        if prod(i.shape) == 0:
            return
        check_offsets("ScatterElements", i, u, y)
        ys = contiguous_strides(y.shape)
        off = [d for d in range(y.ndim) if d != axis]
        shp, (sa, sb, sc) = collapse([i.shape[d] for d in off], [i.strides[d] for d in off],
                                     [u.strides[d] for d in off], [ys[d] for d in off])
        yo, uo = (y.obj, u.obj) if red else (bits(y.obj), bits(u.obj))
        lead = max(0, len(shp) - 5)
        dims = (1,) * (5 - len(shp[lead:])) + tuple(shp[lead:])
        pad = lambda st: (0,) * (5 - len(shp[lead:])) + tuple(st[lead:])  # noqa: E731
        n_lines = prod(dims)
        r, _ = tile(ctx, n_lines, 1)  # one lane per line
        for idx in np.ndindex(*shp[:lead]):
            io, uoff, yoff = (sum(a * b for a, b in zip(idx, st)) for st in (sa, sb, sc))
            launching("ScatterElements", lambda: scatter_elements_kernel[(-(-n_lines // r),)](
                yo, i.obj, uo, io, uoff, yoff, n_lines, *dims[1:], *pad(sa), *pad(sb), *pad(sc),
                i.shape[axis], i.strides[axis], u.strides[axis], ys[axis], y.shape[axis], RED=red, R=r))
    return run


_V11, _V16, _V18 = ("none",), ("none", "add", "mul"), tuple(REDUCTIONS)
for since, until, allowed in ((11, 15, _V11), (16, 17, _V16), (18, 10**9, _V18)):
    attrs = {} if since == 11 else {"reduction": "none"}
    register(OpDef("ScatterND", _snd_infer(allowed), _snd_run(allowed), since=since, until=until, inputs=(3, 3),
                   attrs=attrs, dtypes=ALL_DTYPES, doc=f"reduction: {', '.join(allowed)}"))
    register(OpDef("ScatterElements", _se_infer(allowed), _se_run(allowed), since=since, until=until,
                   inputs=(3, 3), attrs=dict(attrs, axis=0), dtypes=ALL_DTYPES,
                   doc=f"axis; reduction: {', '.join(allowed)}"))
