"""ONNX Conv and ConvTranspose (opsets 13-21), 1-D and 2-D, NCHW.

Conv
    X (N, C, L) or (N, C, H, W); W (M, C/group, k...) ; B (M,) optional. Attributes auto_pad
    (NOTSET, SAME_UPPER, SAME_LOWER, VALID), dilations, group, kernel_shape (checked against W),
    pads [begin..., end...], strides. Runs `ops.conv2d` (1-D as H = 1). Symmetric padding goes
    to conv2d directly; asymmetric padding (SAME_* with an even effective kernel, or explicit
    pads) first writes a zero-padded copy of X with `pad2d_kernel`, then convolves unpadded.
    3-D convolution is UnsupportedError. dtypes: fp32, fp64, fp16, bf16 (fp32 accumulation).
ConvTranspose
    X (N, C, L) or (N, C, H, W); W (C, M/group, k...); B (M,) optional. Attributes auto_pad,
    dilations, group, kernel_shape, output_padding, output_shape (pads then follow from it, as
    the spec says: SAME_UPPER puts the odd padding at the end, otherwise at the beginning), pads,
    strides. Output size s * (in - 1) + output_padding + (k - 1) * d + 1 - pad_begin - pad_end.
    Kernel `conv_transpose_kernel`, an implicit GEMM in gather form (no col2im, no scatter): per
    image and group, M = output channels, N = output pixels, K = (input channel, kh, kw); the B
    element of (k, pixel) is X at ih = (oh + pad_top - kh * d_h) / s_h when that division is exact
    and in range, else 0 (masked). A stride-s layer wastes (1 - 1/s^2) of the K work on masked
    taps; correct for every attribute (negative implied padding included) at the price of speed.
    Fixed tiles (32 x 64 x 32 on cpu, 16 on interp). dtypes as Conv.
"""

from __future__ import annotations

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import ArgumentError, UnsupportedError
from .conv import conv2d
from .gemm import acc_code, zeros_acc
from .nn_util import (FLOATS, ints, is_reference, kind, np_names, out_type, require, same_dtype, scratch,
                      shape_of, spatial_attrs, strides_of, text, unsqueeze)
from .schema import OpDef, register

PAD_BLOCK = 256
CT_CPU_TILE = {"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 32}
CT_INTERP_TILE = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16}


def _ranks(op: str, x: tuple, w: tuple) -> int:
    """The number of spatial dims (1 or 2); UnsupportedError for 3-D, ArgumentError for a mismatch."""
    if len(x) != len(w) or len(x) < 3:
        raise ArgumentError(f"{op}: X {x} and W {w} must both be (N, C, spatial...) with the same rank")
    if len(x) > 4:
        raise UnsupportedError(f"{op}: {len(x) - 2}-D convolution is not supported", hint="kaiyuan has 1-D and 2-D")
    return len(x) - 2


def _kernel_shape(op: str, attrs: dict, w: tuple) -> tuple:
    ks = ints(attrs.get("kernel_shape"))
    if ks is not None and tuple(ks) != tuple(w[2:]):
        raise ArgumentError(f"{op}: kernel_shape {ks} does not match W's spatial dims {tuple(w[2:])}")
    return tuple(w[2:])


def _as_2d(x):
    """A 1-D (N, C, L) array seen as (N, C, 1, L)."""
    return unsqueeze(x, 2) if len(shape_of(x)) == 3 else x


# ------------------------------------------------------------------------------------ Conv


def _conv_geometry(attrs, x: tuple, w: tuple):
    nd = _ranks("Conv", x, w)
    kernel = _kernel_shape("Conv", attrs, w)
    group = int(attrs["group"])
    if group < 1 or x[1] % group or w[0] % group or w[1] * group != x[1]:
        raise ArgumentError(f"Conv: X has {x[1]} channels, W {w}, group={group}: need C % group == 0, "
                            "M % group == 0 and W.shape[1] == C / group")
    strides, dil, pads = spatial_attrs("Conv", attrs, tuple(x[2:]), kernel)
    out = []
    for n, k, s, d, (pb, pe) in zip(x[2:], kernel, strides, dil, pads):
        o = (n + pb + pe - (k - 1) * d - 1) // s + 1
        if o <= 0:
            raise ArgumentError(f"Conv: the (dilated) kernel {kernel} does not fit the padded input {tuple(x[2:])}")
        out.append(o)
    return nd, group, strides, dil, pads, tuple(out)


def _conv_infer(types, attrs, consts):
    x, w = types[0], types[1]
    require("Conv", x.dtype, FLOATS, "X")
    same_dtype("Conv", list(types), ["X", "W", "B"][: len(types)])
    _, _, _, _, _, out = _conv_geometry(attrs, tuple(x.shape), tuple(w.shape))
    b = types[2] if len(types) > 2 else None
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ArgumentError(f"Conv: B must have shape ({w.shape[0]},), got {tuple(b.shape)}")
    return [out_type(x.dtype, (x.shape[0], w.shape[0]) + out)]


@jit
def pad2d_kernel(x_ptr, y_ptr, C, H, W, HP, WP, top, left, sxn, sxc, sxh, sxw, BLOCK: kl.constexpr):
    # y (N, C, HP, WP) contiguous = x shifted by (top, left), zero outside; one program per output
    # row (n, c, h) and BLOCK columns
    row = kl.program_id(0)
    h = row % HP
    nc = row // HP
    n = nc // C
    c = nc % C
    cols = kl.program_id(1) * BLOCK + kl.arange(0, BLOCK)
    ih = h - top
    iw = cols - left
    ok = (cols < WP) & (iw >= 0) & (iw < W) & (ih >= 0) & (ih < H)
    v = kl.load(x_ptr + n * sxn + c * sxc + ih * sxh + kl.where(ok, iw, 0) * sxw, mask=ok, other=0)
    kl.store(y_ptr + row * WP + cols, v, mask=cols < WP)


def _pad_copy(x, pads2d):
    """A zero-padded contiguous copy of x (N, C, H, W); pads2d = ((top, bottom), (left, right))."""
    N, C, H, W = shape_of(x)
    (t, b), (l, r) = pads2d
    HP, WP = H + t + b, W + l + r
    y = scratch(x, (N, C, HP, WP), x.dtype)
    if N * C * HP * WP:
        block = min(PAD_BLOCK, WP)
        pad2d_kernel[(N * C * HP, -(-WP // block))](x, y, C, H, W, HP, WP, t, l, *strides_of(x), BLOCK=block)
    return y


def _conv_run(inputs, attrs, consts, outputs, residual=None, activation=None):
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    nd, group, strides, dil, pads, _ = _conv_geometry(attrs, shape_of(x), shape_of(w))
    x4, w4, y4 = _as_2d(x), _as_2d(w), _as_2d(outputs[0])
    if nd == 1:
        strides, dil, pads = (1,) + strides, (1,) + dil, [(0, 0)] + pads
    if any(pb != pe for pb, pe in pads):
        x4, padding = _pad_copy(x4, pads), (0, 0)
    else:
        padding = (pads[0][0], pads[1][0])
    conv2d(x4, w4, b, stride=strides, padding=padding, dilation=dil, groups=group, out=y4,
           residual=_as_2d(residual) if residual is not None else None, activation=activation)


register(OpDef("Conv", _conv_infer, _conv_run, since=11, inputs=(2, 3), dtypes=np_names(FLOATS),
               attrs={"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None, "pads": None,
                      "strides": None},
               doc="1-D and 2-D convolution via ops.conv2d (implicit GEMM); asymmetric pads via a padded copy"))


# ---------------------------------------------------------------------------- kaiyuan.Conv

CONV_ACTIVATIONS = {"": None, "relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_tanh", "silu": "silu"}


def _fused_activation(attrs) -> str | None:
    act = text(attrs["activation"])
    if act not in CONV_ACTIVATIONS:
        raise UnsupportedError(f"kaiyuan.Conv: activation {act!r} is not supported",
                               hint=f"use one of {sorted(CONV_ACTIVATIONS)}")
    return CONV_ACTIVATIONS[act]


def _fused_conv_infer(types, attrs, consts):
    _fused_activation(attrs)
    conv_types = [t for t in types[:3] if t is not None]
    (y,) = _conv_infer(conv_types, attrs, consts)
    res = types[3] if len(types) > 3 else None
    if res is not None and (tuple(res.shape) != tuple(y.shape) or res.dtype != y.dtype):
        raise ArgumentError(f"kaiyuan.Conv: residual {res.dtype} {tuple(res.shape)} must match the output "
                            f"{y.dtype} {tuple(y.shape)}")
    return [y]


def _fused_conv_run(inputs, attrs, consts, outputs):
    res = inputs[3] if len(inputs) > 3 else None
    conv_inputs = [v for v in inputs[:3] if v is not None]
    _conv_run(conv_inputs, attrs, consts, outputs, residual=res, activation=_fused_activation(attrs))


register(OpDef("Conv", _fused_conv_infer, _fused_conv_run, domain="kaiyuan", since=1, inputs=(2, 4),
               dtypes=np_names(FLOATS),
               attrs={"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None, "pads": None,
                      "strides": None, "activation": ""},
               doc="activation(Conv(X, W, B) + residual) in one kernel (the conv epilogue fusion); Conv's "
                   "attributes, activation '', relu, gelu, gelu_tanh or silu, applied after the residual is added"))


# ---------------------------------------------------------------------------- ConvTranspose


def convt_geometry(attrs, x: tuple, w: tuple):
    """(spatial dims, group, strides, dilations, begin pads, output spatial sizes) of a
    ConvTranspose, following the ONNX spec's equations."""
    nd = _ranks("ConvTranspose", x, w)
    kernel = _kernel_shape("ConvTranspose", attrs, w)
    group = int(attrs["group"])
    if group < 1 or x[1] % group or w[0] != x[1]:
        raise ArgumentError(f"ConvTranspose: X has {x[1]} channels, W {w}, group={group}: need W.shape[0] == C "
                            "and C % group == 0")
    strides, dil, pads = spatial_attrs("ConvTranspose", {**attrs, "auto_pad": "NOTSET"}, tuple(x[2:]), kernel)
    opad = ints(attrs.get("output_padding")) or (0,) * nd
    if len(opad) != nd:
        raise ArgumentError(f"ConvTranspose: output_padding {opad} does not fit {nd} spatial dims")
    auto = text(attrs.get("auto_pad", "NOTSET"))
    if auto not in ("NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise UnsupportedError(f"ConvTranspose: auto_pad {auto!r} is not supported",
                               hint="use NOTSET, SAME_UPPER, SAME_LOWER or VALID")
    natural = [s * (n - 1) + op + (k - 1) * d + 1 for n, s, op, k, d in zip(x[2:], strides, opad, kernel, dil)]
    want = ints(attrs.get("output_shape"))
    if want is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        want = tuple(n * s for n, s in zip(x[2:], strides))
    if want is not None:
        want = tuple(want[-nd:])
        if len(want) != nd:
            raise ArgumentError(f"ConvTranspose: output_shape {want} does not fit {nd} spatial dims")
        totals = [nat - o for nat, o in zip(natural, want)]
        # a negative total (output_shape past the natural size) puts the extra row/column at the end:
        # NOTSET by the spec's floor division (ONNX's test_convtranspose_output_shape), SAME_UPPER by
        # C's division toward zero (onnxruntime)
        halves = [int(t / 2) if auto == "SAME_UPPER" else t // 2 for t in totals]
        begins = [h if auto == "SAME_UPPER" else t - h for t, h in zip(totals, halves)]
        out = want
    else:
        if auto == "VALID":
            pads = [(0, 0)] * nd
        begins = [pb for pb, _ in pads]
        out = tuple(nat - pb - pe for nat, (pb, pe) in zip(natural, pads))
    if min(out) <= 0:
        raise ArgumentError(f"ConvTranspose: output spatial shape {out} is empty")
    return nd, group, strides, dil, begins, tuple(out)


def _convt_infer(types, attrs, consts):
    x, w = types[0], types[1]
    require("ConvTranspose", x.dtype, FLOATS, "X")
    same_dtype("ConvTranspose", list(types), ["X", "W", "B"][: len(types)])
    _, group, _, _, _, out = convt_geometry(attrs, tuple(x.shape), tuple(w.shape))
    M = w.shape[1] * group
    b = types[2] if len(types) > 2 else None
    if b is not None and tuple(b.shape) != (M,):
        raise ArgumentError(f"ConvTranspose: B must have shape ({M},), got {tuple(b.shape)}")
    return [out_type(x.dtype, (x.shape[0], M) + out)]


@jit
def conv_transpose_kernel(x_ptr, w_ptr, bias_ptr, y_ptr, H, W, OW, P, Cg, Mg, K, pad_h, pad_w,
                          sxn, sxc, sxh, sxw, swc, swm, swh, sww, syn, syc, syh, syw, s_bias,
                          KH: kl.constexpr, KW: kl.constexpr, stride_h: kl.constexpr, stride_w: kl.constexpr,
                          dil_h: kl.constexpr, dil_w: kl.constexpr, HAS_BIAS: kl.constexpr, ACC: kl.constexpr,
                          BLOCK_M: kl.constexpr, BLOCK_N: kl.constexpr, BLOCK_K: kl.constexpr):
    # tile: BLOCK_M output channels of group g x BLOCK_N flat output pixels p = oh * OW + ow of image n
    pid = kl.program_id(0)
    n = kl.program_id(1)
    g = kl.program_id(2)
    num_pid_m = kl.cdiv(Mg, BLOCK_M)
    rm = (pid % num_pid_m) * BLOCK_M + kl.arange(0, BLOCK_M)
    rp = (pid // num_pid_m) * BLOCK_N + kl.arange(0, BLOCK_N)
    rk = kl.arange(0, BLOCK_K)
    oh = rp // OW
    ow = rp % OW
    m_ok = rm < Mg
    p_ok = rp < P
    acc = zeros_acc(BLOCK_M, BLOCK_N, ACC)
    for k in range(0, K, BLOCK_K):
        kk = k + rk  # (input channel c, kh, kw)
        k_ok = kk < K
        c = kk // (KH * KW)
        r = kk % (KH * KW)
        kh = r // KW
        kw = r % KW
        a = kl.load(w_ptr + (g * Cg + c)[None, :] * swc + rm[:, None] * swm + (kh * swh + kw * sww)[None, :],
                    mask=m_ok[:, None] & k_ok[None, :], other=0)
        # output pixel (oh, ow) takes input (ih, iw) through tap (kh, kw) when
        # oh + pad_h = ih * stride_h + kh * dil_h (and the same along w)
        th = oh[None, :] + pad_h - (kh * dil_h)[:, None]
        tw = ow[None, :] + pad_w - (kw * dil_w)[:, None]
        ih = th // stride_h
        iw = tw // stride_w
        ok = (th >= 0) & (tw >= 0) & (th % stride_h == 0) & (tw % stride_w == 0) & (ih < H) & (iw < W)
        ok = ok & k_ok[:, None] & p_ok[None, :]
        off = (g * Cg + c)[:, None] * sxc + kl.where(ok, ih * sxh + iw * sxw, 0)
        b = kl.load(x_ptr + n * sxn + off, mask=ok, other=0)
        acc = kl.dot(a, b, acc)
    if HAS_BIAS:
        acc = acc + kl.load(bias_ptr + (g * Mg + rm) * s_bias, mask=m_ok, other=0)[:, None].to(acc.dtype)
    y_ptrs = y_ptr + n * syn + (g * Mg + rm)[:, None] * syc + (oh * syh + ow * syw)[None, :]
    kl.store(y_ptrs, acc, mask=m_ok[:, None] & p_ok[None, :])


def _convt_run(inputs, attrs, consts, outputs):
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    nd, group, strides, dil, begins, out = convt_geometry(attrs, shape_of(x), shape_of(w))
    if nd == 1:
        strides, dil, begins = (1,) + strides, (1,) + dil, [0] + begins
    x4, w4, y4 = _as_2d(x), _as_2d(w), _as_2d(outputs[0])
    N, C, H, W = shape_of(x4)
    _, Mg, KH, KW = shape_of(w4)
    OH, OW = shape_of(y4)[2:]
    Cg = C // group
    if N * Mg * OH * OW == 0:
        return
    tile = CT_INTERP_TILE if is_reference(y4) else CT_CPU_TILE
    grid = (-(-Mg // tile["BLOCK_M"]) * -(-(OH * OW) // tile["BLOCK_N"]), N, group)
    conv_transpose_kernel[grid](x4, w4, b if b is not None else y4, y4, H, W, OW, OH * OW, Cg, Mg, Cg * KH * KW,
                                begins[0], begins[1], *strides_of(x4), *strides_of(w4), *strides_of(y4),
                                strides_of(b)[0] if b is not None else 0, KH=KH, KW=KW, stride_h=strides[0],
                                stride_w=strides[1], dil_h=dil[0], dil_w=dil[1], HAS_BIAS=b is not None,
                                ACC=acc_code(kind("ConvTranspose", x.dtype)), **tile)


register(OpDef("ConvTranspose", _convt_infer, _convt_run, since=11, inputs=(2, 3), dtypes=np_names(FLOATS),
               attrs={"auto_pad": "NOTSET", "dilations": None, "group": 1, "kernel_shape": None,
                      "output_padding": None, "output_shape": None, "pads": None, "strides": None},
               doc="1-D and 2-D transposed convolution, an implicit GEMM in gather form"))
