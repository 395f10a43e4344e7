"""ONNX MaxPool, AveragePool (1-D, 2-D), GlobalAveragePool, GlobalMaxPool (opsets 13-21).

MaxPool (since 12) / AveragePool (11; 19 adds dilations)
    X (N, C, L) or (N, C, H, W). Attributes kernel_shape (required), strides, pads, auto_pad
    (NOTSET, SAME_UPPER, SAME_LOWER, VALID), ceil_mode, dilations; MaxPool: storage_order and the
    optional Indices output (int64 flat indices into X, row-major or, storage_order 1,
    column-major within each (n, c) plane); AveragePool: count_include_pad.
    Output size floor((in + pads - ((k - 1) * d + 1)) / s) + 1, ceil with ceil_mode, where a
    window that would start past the input and its begin padding is dropped (as PyTorch,
    onnxruntime). AveragePool divides by the taps inside the input (count_include_pad 0) or
    inside the padded input (1; the ceil_mode overhang past the end padding never counts).
    MaxPool over padding only sees the input's elements. dtypes: fp32, fp64, fp16, bf16
    (computed in fp32 / fp64), MaxPool also int8, uint8. 3-D pooling is UnsupportedError.
GlobalAveragePool / GlobalMaxPool
    X (N, C, spatial...) of any rank >= 3 -> (N, C, 1, ...): the mean / max of each (n, c) plane.
Kernels
    `pool2d_kernel`: one program per (n, c) plane and tile of output rows x columns (a flat
    pixel index divided per element cost a ResNet stem's pool most of its 5.8 ms); kernel size,
    strides and dilations are constexprs (the window loops unroll; a model has few pool shapes),
    pads run-time arguments; taps outside the input masked. gcc vectorizes no masked load at a
    stride other than 1, so there the loads are unmasked (`pool2d_tile`'s LOADS): max pooling
    reads each tap where it falls, past a row's ends into its neighbours' elements, which it never
    takes, when the tile's every address is inside the input's span (whole vectors, the columns
    picked with permutes); other tiles, and average pooling, clamp the indices into the plane (a
    gather) and select the padding. The stem's 3x3/2 max pool in a one-node graph: 5.8 ms
    masked, 1.5 gathered; its kernel alone 0.75-0.87 ms gathered, 0.46-0.68 now.
    `global_pool_kernel`: one program per (n, c) row, the plane walked in BLOCK-wide chunks.
"""

from __future__ import annotations

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.dtypes import dtype as to_dtype
from ..runtime.errors import ArgumentError, UnsupportedError
from ._common import Operand, rows_view, span
from .nn_util import (FLOATS, NUM_OUTPUTS, ints, kind, np_names, out_type, require, shape_of, spatial_attrs,
                      strides_of, text, unsqueeze)
from .norms import to_compute
from .schema import OpDef, register

MAX_TYPES = FLOATS + ("i8", "u8")
POOL_BLOCK = 256
GLOBAL_BLOCK = 1024
NEG_INF = float("-inf")
MASKED, AS_FALLS, CLAMPED = 0, 1, 2   # pool2d_tile's LOADS


@jit
def pool2d_tile(x_ptr, y_ptr, i_ptr, nc, n, c, oh, ow, H, W, OH, OW, ph, pw, eh, ew, sxn, sxc, sxh, sxw,
                KH: kl.constexpr, KW: kl.constexpr, sh: kl.constexpr, sw: kl.constexpr, dh: kl.constexpr,
                dw: kl.constexpr, MAX: kl.constexpr, INCLUDE_PAD: kl.constexpr, INDICES: kl.constexpr,
                COL_MAJOR: kl.constexpr, FP64: kl.constexpr, BLOCK_H: kl.constexpr, BLOCK_W: kl.constexpr,
                LOADS: kl.constexpr):
    # One tile: BLOCK_H output rows (oh) x BLOCK_W output columns (ow) of plane nc = (n, c).
    # LOADS, how a tap's tile is read: MASKED, under its mask (unit column stride: vector loads);
    # AS_FALLS (max pooling), unmasked at the taps' own addresses, past a row's ends into the
    # neighbouring rows' or planes' elements, which `take` never picks: the caller checked that
    # every address is inside the input's span (whole vectors, the columns picked with permutes);
    # CLAMPED, at indices clamped into the plane, the padding selected after (a gather).
    out_ok = (oh < OH)[:, None] & (ow < OW)[None, :]
    h0 = oh * sh - ph
    w0 = ow * sw - pw
    acc = to_compute(kl.zeros((BLOCK_H, BLOCK_W), kl.float32), FP64)
    if MAX:
        acc = acc + NEG_INF
    cnt = kl.zeros((BLOCK_H, BLOCK_W), kl.float32)
    # the window's first tap taken yet? (int64 when it is the Indices output)
    idx = kl.full((BLOCK_H, BLOCK_W), -1, kl.int64 if INDICES else kl.int32)
    base = x_ptr + n * sxn + c * sxc
    for kh in range(0, KH):
        ih = h0 + kh * dh
        h_ok = (oh < OH) & (ih >= 0) & (ih < H)
        for kw in range(0, KW):
            iw = w0 + kw * dw
            ok = h_ok[:, None] & ((ow < OW) & (iw >= 0) & (iw < W))[None, :]
            if LOADS == MASKED:
                v = to_compute(kl.load(base + ih[:, None] * sxh + iw[None, :] * sxw, mask=ok, other=0), FP64)
            elif LOADS == AS_FALLS:
                v = to_compute(kl.load(base + ih[:, None] * sxh + iw[None, :] * sxw), FP64)
            else:
                ihc = kl.minimum(kl.maximum(ih, 0), H - 1)
                iwc = kl.minimum(kl.maximum(iw, 0), W - 1)
                v = to_compute(kl.where(ok, kl.load(base + ihc[:, None] * sxh + iwc[None, :] * sxw), 0), FP64)
            if MAX:
                take = ok & ((v > acc) | (idx < 0))  # the first tap of the window always counts
                acc = kl.where(take, v, acc)
                if INDICES:
                    if COL_MAJOR:
                        flat = nc.to(kl.int64) * (H * W) + iw[None, :] * H + ih[:, None]
                    else:
                        flat = nc.to(kl.int64) * (H * W) + ih[:, None] * W + iw[None, :]
                    idx = kl.where(take, flat, idx)
                else:
                    idx = kl.where(take, 0, idx)
            else:
                acc = acc + v
                if INCLUDE_PAD:
                    cnt = cnt + kl.where(out_ok & (ih < eh)[:, None] & (iw < ew)[None, :], 1.0, 0.0)
                else:
                    cnt = cnt + kl.where(ok, 1.0, 0.0)
    if MAX:
        out = acc
    else:
        out = acc / kl.maximum(cnt, 1.0).to(acc.dtype)
    dst = nc * (OH * OW) + oh[:, None] * OW + ow[None, :]
    kl.store(y_ptr + dst, out, mask=out_ok)
    if INDICES:
        kl.store(i_ptr + dst, idx, mask=out_ok)


@jit
def pool2d_kernel(x_ptr, y_ptr, i_ptr, C, H, W, OH, OW, ph, pw, eh, ew, sxn, sxc, sxh, sxw, x_span,
                  KH: kl.constexpr, KW: kl.constexpr, sh: kl.constexpr, sw: kl.constexpr, dh: kl.constexpr,
                  dw: kl.constexpr, MAX: kl.constexpr, INCLUDE_PAD: kl.constexpr, INDICES: kl.constexpr,
                  COL_MAJOR: kl.constexpr, FP64: kl.constexpr, BLOCK_H: kl.constexpr, BLOCK_W: kl.constexpr):
    # y (N, C, OH, OW) contiguous; tap (kh, kw) of output (oh, ow) reads x[ih, iw] with
    # ih = oh * sh - ph + kh * dh (and along w); eh/ew = H/W + the end padding (the padded extent).
    # A tile is BLOCK_H output rows x BLOCK_W output columns of one (n, c) plane, so rows and
    # columns come from the program ids without dividing a flat pixel index per element.
    nc = kl.program_id(0)
    n = nc // C
    c = nc % C
    oh = kl.program_id(1) * BLOCK_H + kl.arange(0, BLOCK_H)
    ow = kl.program_id(2) * BLOCK_W + kl.arange(0, BLOCK_W)
    if sw == 1:
        pool2d_tile(x_ptr, y_ptr, i_ptr, nc, n, c, oh, ow, H, W, OH, OW, ph, pw, eh, ew, sxn, sxc, sxh, sxw,
                    KH, KW, sh, sw, dh, dw, MAX, INCLUDE_PAD, INDICES, COL_MAJOR, FP64, BLOCK_H, BLOCK_W, MASKED)
    else:
        # the lowest and highest addresses the tile's taps read
        top = kl.program_id(1) * BLOCK_H * sh - ph
        bottom = (kl.program_id(1) * BLOCK_H + BLOCK_H - 1) * sh - ph + (KH - 1) * dh
        left = kl.program_id(2) * BLOCK_W * sw - pw
        right = (kl.program_id(2) * BLOCK_W + BLOCK_W - 1) * sw - pw + (KW - 1) * dw
        lo = n * sxn + c * sxc + top * sxh + left * sxw
        hi = n * sxn + c * sxc + bottom * sxh + right * sxw
        if MAX & (lo >= 0) & (hi < x_span):
            pool2d_tile(x_ptr, y_ptr, i_ptr, nc, n, c, oh, ow, H, W, OH, OW, ph, pw, eh, ew, sxn, sxc, sxh, sxw,
                        KH, KW, sh, sw, dh, dw, MAX, INCLUDE_PAD, INDICES, COL_MAJOR, FP64, BLOCK_H, BLOCK_W,
                        AS_FALLS)
        else:
            pool2d_tile(x_ptr, y_ptr, i_ptr, nc, n, c, oh, ow, H, W, OH, OW, ph, pw, eh, ew, sxn, sxc, sxh, sxw,
                        KH, KW, sh, sw, dh, dw, MAX, INCLUDE_PAD, INDICES, COL_MAJOR, FP64, BLOCK_H, BLOCK_W,
                        CLAMPED)


@jit
def global_pool_kernel(x_ptr, y_ptr, R1, L, sx0, sx1, sxc, MAX: kl.constexpr, FP64: kl.constexpr,
                       BLOCK: kl.constexpr):
    row = kl.program_id(0)
    x_ptr += (row // R1) * sx0 + (row % R1) * sx1
    cols = kl.arange(0, BLOCK)
    acc = to_compute(kl.zeros((BLOCK,), kl.float32), FP64)
    if MAX:
        acc = acc + NEG_INF
    for off in range(0, L, BLOCK):
        c = off + cols
        v = to_compute(kl.load(x_ptr + c * sxc, mask=c < L, other=0), FP64)
        if MAX:
            acc = kl.where(c < L, kl.maximum(acc, v), acc)
        else:
            acc = acc + v
    if MAX:
        out = kl.max(acc, axis=0)
    else:
        out = kl.sum(acc, axis=0) / L
    kl.store(y_ptr + row, out)


# ------------------------------------------------------------------------------- geometry


def pool_geometry(op: str, attrs: dict, x: tuple):
    """(strides, dilations, pads [(begin, end)], output spatial sizes) of a pooling node."""
    if len(x) < 3:
        raise ArgumentError(f"{op}: X must be (N, C, spatial...), got {x}")
    if len(x) > 4:
        raise UnsupportedError(f"{op}: {len(x) - 2}-D pooling is not supported", hint="kaiyuan has 1-D and 2-D")
    kernel = ints(attrs.get("kernel_shape"))
    if kernel is None or len(kernel) != len(x) - 2 or min(kernel) < 1:
        raise ArgumentError(f"{op}: kernel_shape {kernel} does not fit X {x}")
    strides, dil, pads = spatial_attrs(op, attrs, tuple(x[2:]), kernel)
    auto = text(attrs.get("auto_pad", "NOTSET"))
    ceil = bool(attrs.get("ceil_mode", 0)) and auto in ("NOTSET", "")
    out = []
    for n, k, s, d, (pb, pe) in zip(x[2:], kernel, strides, dil, pads):
        span = n + pb + pe - (k - 1) * d - 1
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-n // s)
        elif ceil:
            o = -(-span // s) + 1
            if (o - 1) * s >= n + pb:  # the last window would start in the end padding
                o -= 1
        else:
            o = span // s + 1
        if o <= 0 or span < 0:
            raise ArgumentError(f"{op}: the (dilated) kernel {kernel} does not fit the padded input {tuple(x[2:])}")
        out.append(o)
    return kernel, strides, dil, pads, tuple(out)


def _pool_infer(op: str):
    def infer(types, attrs, consts):
        x = types[0]
        require(op, x.dtype, MAX_TYPES if op == "MaxPool" else FLOATS, "X")
        *_, out = pool_geometry(op, attrs, tuple(x.shape))
        shape = tuple(x.shape[:2]) + out
        types_out = [out_type(x.dtype, shape)]
        if op == "MaxPool" and (attrs.get(NUM_OUTPUTS) or 1) > 1:
            types_out.append(out_type(np.int64, shape))
        return types_out
    return infer


def _pool_run(op: str):
    def run(inputs, attrs, consts, outputs):
        x = inputs[0]
        kernel, strides, dil, pads, _ = pool_geometry(op, attrs, shape_of(x))
        if len(kernel) == 1:  # 1-D as H = 1
            x, outputs = unsqueeze(x, 2), [unsqueeze(o, 2) for o in outputs]
            kernel, strides, dil, pads = (1,) + kernel, (1,) + strides, (1,) + dil, [(0, 0)] + pads
        y = outputs[0]
        ind = outputs[1] if len(outputs) > 1 else None
        N, C, H, W = shape_of(x)
        OH, OW = shape_of(y)[2:]
        if N * C * OH * OW == 0:
            return
        bw = min(POOL_BLOCK, 1 << max(0, (OW - 1).bit_length()))
        bh = min(POOL_BLOCK // bw, 1 << max(0, (OH - 1).bit_length()))
        xst = strides_of(x)
        pool2d_kernel[(N * C, -(-OH // bh), -(-OW // bw))](
            x, y, ind if ind is not None else y, C, H, W, OH, OW, pads[0][0], pads[1][0], H + pads[0][1],
            W + pads[1][1], *xst, span(shape_of(x), xst), KH=kernel[0], KW=kernel[1], sh=strides[0],
            sw=strides[1], dh=dil[0], dw=dil[1], MAX=op == "MaxPool",
            INCLUDE_PAD=bool(attrs.get("count_include_pad", 0)), INDICES=ind is not None,
            COL_MAJOR=bool(attrs.get("storage_order", 0)), FP64=kind(op, x.dtype) == "fp64", BLOCK_H=bh, BLOCK_W=bw)
    return run


_COMMON = {"auto_pad": "NOTSET", "ceil_mode": 0, "kernel_shape": None, "pads": None, "strides": None}
register(OpDef("MaxPool", _pool_infer("MaxPool"), _pool_run("MaxPool"), since=12, outputs=(1, 2),
               attrs={**_COMMON, "dilations": None, "storage_order": 0, NUM_OUTPUTS: None},
               dtypes=np_names(MAX_TYPES), doc="1-D/2-D max pooling, optional Indices (int64)"))
register(OpDef("AveragePool", _pool_infer("AveragePool"), _pool_run("AveragePool"), since=11, until=18,
               attrs={**_COMMON, "count_include_pad": 0}, dtypes=np_names(FLOATS), doc="1-D/2-D average pooling"))
register(OpDef("AveragePool", _pool_infer("AveragePool"), _pool_run("AveragePool"), since=19,
               attrs={**_COMMON, "count_include_pad": 0, "dilations": None}, dtypes=np_names(FLOATS),
               doc="1-D/2-D average pooling with dilations"))


# ------------------------------------------------------------------------------- global pools


def _global_infer(op: str):
    def infer(types, attrs, consts):
        x = types[0]
        require(op, x.dtype, MAX_TYPES if op == "GlobalMaxPool" else FLOATS, "X")
        if len(x.shape) < 3:
            raise ArgumentError(f"{op}: X must be (N, C, spatial...), got {tuple(x.shape)}")
        return [out_type(x.dtype, tuple(x.shape[:2]) + (1,) * (len(x.shape) - 2))]
    return infer


def _global_run(op: str):
    def run(inputs, attrs, consts, outputs):
        x, y = inputs[0], outputs[0]
        xs = shape_of(x)
        if xs[0] * xs[1] == 0:
            return
        if int(np.prod(xs[2:])) == 0:
            raise ArgumentError(f"{op}: X {xs} has an empty spatial plane")
        dt = to_dtype(x.dtype)
        xo = Operand(x, xs, strides_of(x), dt, "X")
        yo = Operand(y, xs[:2] + (1,) * (len(xs) - 2), (xs[1], 1) + (0,) * (len(xs) - 2), dt, "Y")
        x2, (R0, R1, L), sx, _ = rows_view(op, xo, yo, len(xs) - 2)
        block = min(GLOBAL_BLOCK, 1 << max(0, (L - 1).bit_length()))
        global_pool_kernel[(R0 * R1,)](x2.obj, y, R1, L, *sx, MAX=op == "GlobalMaxPool", FP64=dt.name == "fp64",
                                       BLOCK=block)
    return run


for _op in ("GlobalAveragePool", "GlobalMaxPool"):
    register(OpDef(_op, _global_infer(_op), _global_run(_op), since=1,
                   dtypes=np_names(MAX_TYPES if _op == "GlobalMaxPool" else FLOATS),
                   doc=f"{'max' if 'Max' in _op else 'mean'} over all spatial dims of each (n, c) plane"))
