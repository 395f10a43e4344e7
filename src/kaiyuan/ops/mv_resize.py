"""ONNX Resize (opsets 11-21): modes nearest and linear, over any number of axes.

Definition (ONNX's, as its reference evaluator computes it)
    Output size per axis: `sizes` (with keep_aspect_ratio_policy stretch / not_larger /
    not_smaller from opset 18), or floor(in * scale) from `scales`; roi/scales/sizes/axes are
    constants. Each output index maps to a source coordinate x by coordinate_transformation_mode
    half_pixel (default), pytorch_half_pixel, asymmetric, align_corners, or (opset 19)
    half_pixel_symmetric. nearest: x rounded by nearest_mode (round_prefer_floor, default;
    round_prefer_ceil, floor, ceil), clamped into the input. linear: the two neighbours floor(x)
    and floor(x) + 1, clamped (edge padding), weighted by the fraction.
    Not supported (UnsupportedError): mode cubic, tf_crop_and_resize, antialias=1,
    exclude_outside=1, linear on integer dtypes.
dtypes
    nearest: every dtype (it moves bits). linear: fp16, bf16, fp32 (computed in fp32, rounded once
    per resized axis), fp64 (in fp64).
Kernels
    The coordinate maps depend on shapes alone, so they are built on the host as index (and
    weight) tables. nearest: one `mapped_copy_kernel` (per output dim a table of input offsets).
    linear: separable, one `linear_axis_kernel` pass per resized axis over the tensor seen as
    (outer, axis, inner), each output row blending two input rows; axes whose map is the identity
    are skipped.
"""

from __future__ import annotations

from math import prod

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import ArgumentError, UnsupportedError
from ..runtime.tensor import contiguous_strides
from .mv_base import ALL_DTYPES, FLOAT_DTYPES, begin, check_dtype, dense_operand, norm_axes, same_type
from .mv_copy import View, bits, copy, mapped_copy, small_array, tile
from .schema import OpDef, register

TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "asymmetric", "align_corners")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


@jit(do_not_specialize=("n_rows", "n_out", "n_in", "inner"))
def linear_axis_kernel(x_ptr, y_ptr, i0_ptr, i1_ptr, w_ptr, n_rows, n_out, n_in, inner,
                       FP64: kl.constexpr, R: kl.constexpr, C: kl.constexpr):
    """y[o, j, :] = x[o, i0[j], :] * (1 - w[j]) + x[o, i1[j], :] * w[j] (contiguous x and y)."""
    rows = kl.program_id(0) * R + kl.arange(0, R)
    cols = kl.program_id(1) * C + kl.arange(0, C)
    rmask = rows < n_rows
    o = rows // n_out
    j = rows % n_out
    a = kl.load(i0_ptr + j, mask=rmask)
    b = kl.load(i1_ptr + j, mask=rmask)
    w = kl.load(w_ptr + j, mask=rmask)
    mask = rmask[:, None] & (cols < inner)[None, :]
    xa = kl.load(x_ptr + ((o * n_in + a) * inner)[:, None] + cols[None, :], mask=mask)
    xb = kl.load(x_ptr + ((o * n_in + b) * inner)[:, None] + cols[None, :], mask=mask)
    if FP64:
        xa = xa.to(kl.float64)
        xb = xb.to(kl.float64)
    else:
        xa = xa.to(kl.float32)
        xb = xb.to(kl.float32)
    v = xa + (xb - xa) * w[:, None]
    kl.store(y_ptr + rows[:, None] * inner + cols[None, :], v, mask=mask)


def _floats(consts, i):
    v = consts[i] if i < len(consts) else None
    return None if v is None or np.asarray(v).size == 0 else [float(s) for s in np.asarray(v).reshape(-1)]


def _plan(x_shape, attrs, consts) -> tuple[list[float], list[int]]:
    """(scale, output size) per dim, as ONNX's reference computes them."""
    rank = len(x_shape)
    scales, sizes = _floats(consts, 2), _floats(consts, 3)
    if (scales is None) == (sizes is None):
        raise ArgumentError("Resize: exactly one of scales and sizes must be given (as a constant)")
    axes = attrs.get("axes")
    axes = list(range(rank)) if axes is None else norm_axes("Resize", axes, rank)
    given = scales if scales is not None else sizes
    if len(given) != len(axes):
        raise ArgumentError(f"Resize: {len(given)} scales/sizes for {len(axes)} axes")
    scale, out = [1.0] * rank, list(x_shape)
    if scales is not None:
        for a, s in zip(axes, scales):
            if s <= 0:
                raise ArgumentError(f"Resize: scales must be positive, got {scales}")
            scale[a], out[a] = s, int(s * x_shape[a])
        return scale, out
    for a, s in zip(axes, sizes):
        scale[a], out[a] = int(s) / x_shape[a] if x_shape[a] else 1.0, int(s)
    policy = attrs.get("keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        if policy not in ("not_larger", "not_smaller"):
            raise UnsupportedError(f"Resize: keep_aspect_ratio_policy {policy!r}",
                                   hint="use stretch, not_larger or not_smaller")
        pick = min if policy == "not_larger" else max
        s = pick(scale[a] for a in axes)
        for a in axes:
            scale[a], out[a] = s, int(s * x_shape[a] + 0.5)
    return scale, out


def _source_coords(mode: str, n_in: int, n_out: int, scale: float) -> np.ndarray:
    """The source coordinate of each output index along one axis."""
    y = np.arange(n_out, dtype=np.float64)
    length = scale * n_in
    if mode == "align_corners":
        return np.zeros(n_out) if length == 1 else y * (n_in - 1) / (length - 1)
    if mode == "asymmetric":
        return y / scale
    if mode == "pytorch_half_pixel":
        return np.full(n_out, -0.5) if length == 1 else (y + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / length)
        return offset + (y + 0.5) / scale - 0.5
    return (y + 0.5) / scale - 0.5


def _nearest(x: np.ndarray, mode: str, n_in: int) -> np.ndarray:
    f = np.floor(x)
    frac = x - f
    if mode == "round_prefer_floor":
        i = np.where(frac > 0.5, f + 1, f)
    elif mode == "round_prefer_ceil":
        i = np.where(frac >= 0.5, f + 1, f)
    elif mode == "floor":
        i = f
    else:
        i = np.ceil(x)
    return np.clip(i, 0, n_in - 1).astype(np.int64)


def _check_attrs(attrs, transforms):
    mode = attrs["mode"]
    if mode not in ("nearest", "linear"):
        raise UnsupportedError(f"Resize: mode {mode!r} is not supported", hint="supported: nearest, linear")
    if attrs["coordinate_transformation_mode"] not in transforms:
        raise UnsupportedError(f"Resize: coordinate_transformation_mode {attrs['coordinate_transformation_mode']!r}"
                               " is not supported", hint=f"supported: {', '.join(transforms)}")
    if mode == "nearest" and attrs["nearest_mode"] not in NEAREST_MODES:
        raise UnsupportedError(f"Resize: nearest_mode {attrs['nearest_mode']!r}",
                               hint=f"supported: {', '.join(NEAREST_MODES)}")
    if attrs.get("antialias", 0) or attrs["exclude_outside"]:
        raise UnsupportedError("Resize: antialias=1 and exclude_outside=1 are not supported")


def _infer(transforms):
    def infer(types, attrs, consts):
        x = types[0]
        _check_attrs(attrs, transforms)
        check_dtype("Resize", x, FLOAT_DTYPES if attrs["mode"] == "linear" else ALL_DTYPES)
        if any(d == 0 for d in x.shape):
            raise ArgumentError(f"Resize: input {x.shape} is empty")
        return [same_type(x, _plan(x.shape, attrs, consts)[1])]
    return infer


def _run(inputs, attrs, consts, outputs):
    ctx = begin("Resize", inputs[:1], outputs)
    x, y = ctx.operand(inputs[0], "X"), ctx.operand(outputs[0], "output")
    scale, out = _plan(x.shape, attrs, consts)
    mode = attrs["coordinate_transformation_mode"]
    coords = [_source_coords(mode, n, o, s) for n, o, s in zip(x.shape, out, scale)]
    if attrs["mode"] == "nearest":
        maps = [_nearest(c, attrs["nearest_mode"], n) * st for c, n, st in zip(coords, x.shape, x.strides)]
        mapped_copy(ctx, bits(x.obj), maps, bits(y.obj), "Resize")
        return
    _linear(ctx, x, y, coords)


def _linear(ctx, x, y, coords) -> None:
    fp64 = x.dtype.name == "fp64"
    work = [a for a, c in enumerate(coords)
            if len(c) != x.shape[a] or not np.array_equal(c, np.arange(x.shape[a]))]
    if not work:
        copy(ctx, x.shape, View(bits(x.obj), 0, x.strides), View(bits(y.obj), 0, contiguous_strides(y.shape)))
        return
    cur = dense_operand(ctx, x)
    shape = list(x.shape)
    for k, a in enumerate(work):
        n_in, n_out = shape[a], len(coords[a])
        f = np.floor(coords[a])
        i0 = np.clip(f, 0, n_in - 1).astype(np.int32)
        i1 = np.clip(f + 1, 0, n_in - 1).astype(np.int32)
        w = (coords[a] - f).astype(np.float64 if fp64 else np.float32)
        shape[a] = n_out
        last = k == len(work) - 1
        nxt = y.obj if last else ctx.output(shape, "fp64" if fp64 else "fp32").obj
        outer, inner = prod(shape[:a]), prod(shape[a + 1:])
        rows = outer * n_out
        if rows * inner > 2**31 - 1 or prod(cur.shape) > 2**31 - 1:
            raise UnsupportedError("Resize: more than 2**31 elements; kernels use 32-bit offsets")
        r, c = tile(ctx, rows, inner)
        linear_axis_kernel[(-(-rows // r), -(-inner // c))](
            cur.obj, nxt, small_array(nxt, i0), small_array(nxt, i1), small_array(nxt, w),
            rows, n_out, n_in, inner, FP64=fp64, R=r, C=c)
        cur = ctx.operand(nxt, "X")


_ATTRS = {"coordinate_transformation_mode": "half_pixel", "cubic_coeff_a": -0.75, "exclude_outside": 0,
          "extrapolation_value": 0.0, "mode": "nearest", "nearest_mode": "round_prefer_floor"}
_ATTRS18 = dict(_ATTRS, antialias=0, axes=None, keep_aspect_ratio_policy="stretch")
_DOC = "roi/scales/sizes constants; modes nearest, linear"
register(OpDef("Resize", _infer(TRANSFORMS), _run, since=11, until=17, inputs=(1, 4), attrs=_ATTRS,
               dtypes=ALL_DTYPES, value_inputs=(1, 2, 3), doc=_DOC))
register(OpDef("Resize", _infer(TRANSFORMS), _run, since=18, until=18, inputs=(1, 4), attrs=_ATTRS18,
               dtypes=ALL_DTYPES, value_inputs=(1, 2, 3), doc=_DOC + "; axes, keep_aspect_ratio_policy"))
register(OpDef("Resize", _infer(TRANSFORMS + ("half_pixel_symmetric",)), _run, since=19, inputs=(1, 4),
               attrs=_ATTRS18, dtypes=ALL_DTYPES, value_inputs=(1, 2, 3),
               doc=_DOC + "; axes, keep_aspect_ratio_policy, half_pixel_symmetric"))
