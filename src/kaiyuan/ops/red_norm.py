"""ONNX normalisation layers: LayerNormalization (17), InstanceNormalization (6, 22), GroupNormalization
(18, 21), BatchNormalization (9, 14, 15; inference only).

Definitions
    LayerNorm   y = (x - mean) / sqrt(var + epsilon) * Scale + B over the dims from `axis` on
                (biased variance); Scale and B broadcast to those dims. Outputs Mean and
                InvStdDev (fp32, X.shape[:axis] + 1s) when the node asks for them. stash_type 1.
    InstanceNorm  the same over the spatial dims of (N, C, ...) per (n, c); scale/B per channel.
    GroupNorm   the same over each group of C/num_groups channels; opset 18: scale/bias per group
                (num_groups values), opset 21: per channel (C values), stash_type 1.
    BatchNorm   y = (x - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + B[c] with the given
                running statistics (training_mode=1 and the training outputs: UnsupportedError).
dtypes: fp32, fp64, fp16, bf16 as ONNX lists them per version; statistics in fp32 (fp64 for fp64
inputs, where ONNX's stash_type would use fp32: kaiyuan is more accurate, not less).
Kernels
    LayerNorm with only Y runs norms.norm_kernel (ky.ops.layer_norm's row kernel). With the
    statistics outputs, and for Instance/GroupNorm, rows_norm_kernel: one program per row of L
    elements (the dims normalised together, merged through strides or read from one contiguous
    copy), a mean pass and a variance pass (two passes: no E[x^2]-E[x]^2 cancellation), then the
    write pass: LayerNorm's scale/bias per element; Instance/GroupNorm walk the row channel by
    channel with that channel's (or group's) scale and bias folded into one multiply-add. A row of
    up to 4096 elements is held in one tile and read once. BatchNorm is channel_affine_kernel:
    grid (N*C, spatial blocks), the four per-channel values folded into one multiply-add.
"""

from __future__ import annotations

from math import prod

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import ArgumentError, UnsupportedError
from ._common import Operand, broadcast_strides, collapse, contiguous, rows_view
from .norms import CHUNK, SINGLE_MAX, norm_kernel
from .red_common import FLOATS, NUM_OUTPUTS, acc_type, as_shape, begin, check_dtype, norm_axis, scratch
from .schema import OpDef, TensorType, register

ROW_TILE = 4096     # rows up to this long are one tile, read once
CHUNK_TILE = 256    # longer rows: chunks (a small loop-carried tile is what the cpu backend does best)
AFFINE_BLOCK = 1024
F32 = np.dtype(np.float32)


@jit(do_not_specialize=["R1", "L", "S", "CPG", "G", "PS", "PCH", "sx0", "sx1", "sy0", "sy1"])
def rows_norm_kernel(x_ptr, y_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr, R1, L, S, CPG, G, PS, PCH, eps,
                     sx0, sx1, sxc, sy0, sy1, syc, sw, sb,
                     PER_ELEM: kl.constexpr, HAS_W: kl.constexpr, HAS_B: kl.constexpr, STATS: kl.constexpr,
                     ACC: kl.constexpr, BLOCK: kl.constexpr, SINGLE: kl.constexpr):
    """Normalise row `program_id` (L elements at stride sxc). Scale/bias: PER_ELEM, one per element
    of the row (LayerNorm); else the row is CPG channels of S elements and channel ch of the row
    uses scale/bias index (row % G) * PS + ch * PCH (Instance/GroupNorm; both present)."""
    row = kl.program_id(0)
    xp = x_ptr + (row // R1) * sx0 + (row % R1) * sx1
    yp = y_ptr + (row // R1) * sy0 + (row % R1) * sy1
    cols = kl.arange(0, BLOCK)
    if SINGLE:   # the row is one tile: read once
        m = cols < L
        x = kl.load(xp + cols * sxc, mask=m, other=0).to(ACC)
        mean = kl.sum(x, axis=0) / L
        d = kl.where(m, x - mean, 0.0)
        rstd = 1.0 / kl.sqrt(kl.sum(d * d, axis=0) / L + eps)
    else:
        acc = kl.zeros((BLOCK,), ACC)
        for off in range(0, L, BLOCK):
            c = off + cols
            acc += kl.load(xp + c * sxc, mask=c < L, other=0).to(ACC)
        mean = kl.sum(acc, axis=0) / L
        acc = kl.zeros((BLOCK,), ACC)
        for off in range(0, L, BLOCK):
            c = off + cols
            d = kl.where(c < L, kl.load(xp + c * sxc, mask=c < L, other=0).to(ACC) - mean, 0.0)
            acc += d * d
        rstd = 1.0 / kl.sqrt(kl.sum(acc, axis=0) / L + eps)
    if STATS:
        kl.store(mean_ptr + row, mean)
        kl.store(rstd_ptr + row, rstd)
    if PER_ELEM:
        for off in range(0, L, BLOCK):
            c = off + cols
            m = c < L
            if SINGLE:
                y = d * rstd
            else:
                y = (kl.load(xp + c * sxc, mask=m, other=0).to(ACC) - mean) * rstd
            if HAS_W:
                y = y * kl.load(w_ptr + c * sw, mask=m, other=0).to(ACC)
            if HAS_B:
                y = y + kl.load(b_ptr + c * sb, mask=m, other=0).to(ACC)
            kl.store(yp + c * syc, y, mask=m)
    else:   # per channel: fold scale and bias into one multiply-add
        p0 = (row % G) * PS
        for ch in range(CPG):
            k = kl.load(w_ptr + (p0 + ch * PCH) * sw).to(ACC) * rstd
            shift = kl.load(b_ptr + (p0 + ch * PCH) * sb).to(ACC) - mean * k
            for off in range(0, S, BLOCK):
                m = off + cols < S
                c = ch * S + off + cols
                x = kl.load(xp + c * sxc, mask=m, other=0).to(ACC)
                kl.store(yp + c * syc, x * k + shift, mask=m)


@jit(do_not_specialize=["R1", "S", "C", "sx0", "sx1", "sy0", "sy1"])
def channel_affine_kernel(x_ptr, y_ptr, s_ptr, b_ptr, m_ptr, v_ptr, R1, S, C, eps, sx0, sx1, sxc, sy0, sy1, syc,
                          ss, sb, sm, sv, ACC: kl.constexpr, BLOCK: kl.constexpr):
    row = kl.program_id(0)
    ch = row % C
    cols = kl.program_id(1) * BLOCK + kl.arange(0, BLOCK)
    mask = cols < S
    k = kl.load(s_ptr + ch * ss).to(ACC) / kl.sqrt(kl.load(v_ptr + ch * sv).to(ACC) + eps)
    shift = kl.load(b_ptr + ch * sb).to(ACC) - kl.load(m_ptr + ch * sm).to(ACC) * k
    x = kl.load(x_ptr + (row // R1) * sx0 + (row % R1) * sx1 + cols * sxc, mask=mask, other=0).to(ACC)
    kl.store(y_ptr + (row // R1) * sy0 + (row % R1) * sy1 + cols * syc, x * k + shift, mask=mask)


# ----------------------------------------------------------------------------- launches
def _param_view(op: str, p: Operand | None, shape: tuple, name: str):
    """(object, stride) of a scale/bias broadcast to `shape` and seen as one flat dim (a
    contiguous copy when its strides do not fold); (None, 0) when absent."""
    if p is None:
        return None, 0
    dims, strides = list(p.shape), list(p.strides)
    while len(dims) > len(shape):
        if dims[0] != 1:
            raise UnsupportedError(f"{op}: {name} of shape {tuple(p.shape)} varies over dims that are not normalised",
                                   hint=f"give {name} the shape of the normalised dims {shape}")
        dims, strides = dims[1:], strides[1:]
    for i in range(1, len(dims) + 1):
        if dims[-i] not in (1, shape[-i]):
            raise ArgumentError(f"{op}: {name} of shape {tuple(p.shape)} does not broadcast to {shape}")
    q = as_shape(p, dims, strides)
    full = as_shape(q, shape, broadcast_strides(q, q.ndim, shape))
    dims, (st,) = collapse(full.shape, full.strides)
    if len(dims) > 1:   # e.g. a (D,) scale over normalised dims (H, D): expand it once
        return contiguous(full).obj, 1
    return full.obj, st[0]


def rows_norm(op: str, x: Operand, y: Operand, ncols: int, w, b, eps: float, channels=None,
              mean=None, rstd=None) -> None:
    """rows_norm_kernel over x seen as rows of its last `ncols` dims. w, b: (object, stride).
    channels: None for one scale/bias per element of a row, else (S, CPG, G, PS, PCH)."""
    x2, (R0, R1, L), sx, sy = rows_view(op, x, y, ncols)
    if R0 * R1 * L == 0:
        return
    single = L <= ROW_TILE
    block = max(16, min(ROW_TILE, 1 << max(0, L - 1).bit_length())) if single else CHUNK_TILE
    S, CPG, G, PS, PCH = channels or (1, 1, 1, 0, 0)
    ptrs = [y.obj if p is None else p for p in (w[0], b[0], mean, rstd)]   # y stands in for absent ones
    rows_norm_kernel[(R0 * R1,)](x2.obj, y.obj, *ptrs, R1, L, S, CPG, G, PS, PCH, float(eps), *sx, *sy, w[1], b[1],
                                 PER_ELEM=channels is None, HAS_W=w[0] is not None, HAS_B=b[0] is not None,
                                 STATS=mean is not None, ACC=acc_type(x.dtype.name), BLOCK=block, SINGLE=single)


def layer_norm_into(X, scale, bias, axis: int, eps: float, Y, mean=None, inv_std=None) -> None:
    """Y = LayerNormalization(X, scale, bias) over dims axis.. (axis non-negative); mean/inv_std:
    optional fp32 outputs of X.shape[:axis] (+ 1s)."""
    op = "LayerNormalization"
    ctx, (x, w, b), (y, m, r) = begin(op, [X, scale, bias], [Y, mean, inv_std])
    ns = tuple(x.shape[axis:])
    wv, bv = _param_view(op, w, ns, "Scale"), _param_view(op, b, ns, "B")
    if m is None and r is None:
        x2, (R0, R1, N), sx, sy = rows_view(op, x, y, len(ns))
        if R0 * R1 * N == 0:
            return
        single = N <= SINGLE_MAX
        ptrs = [y.obj if p is None else p for p in (wv[0], bv[0])]
        norm_kernel[(R0 * R1,)](x2.obj, y.obj, *ptrs, R1, N, float(eps), *sx, *sy, wv[1], bv[1], RMS=False,
                                HAS_W=wv[0] is not None,
                                HAS_B=bv[0] is not None, FP64=x.dtype.name == "fp64", BLOCK=N if single else CHUNK,
                                SINGLE=single)
        return
    rows = prod(x.shape[:axis])
    m_obj = m.obj if m is not None else scratch(y.obj, (rows,), "fp32")   # the one not asked for
    r_obj = r.obj if r is not None else scratch(y.obj, (rows,), "fp32")
    rows_norm(op, x, y, len(ns), wv, bv, eps, None, m_obj, r_obj)


def group_norm_into(op: str, X, scale, bias, groups: int, per_channel: bool, eps: float, Y) -> None:
    """Y = GroupNorm(X) with `groups` groups of channels (InstanceNorm: groups = C); scale/bias
    hold one value per channel (per_channel) or per group."""
    ctx, (x, w, b), (y,) = begin(op, [X, scale, bias], [Y])
    N, C, sp = x.shape[0], x.shape[1], tuple(x.shape[2:])
    cpg = C // groups
    S = prod(sp)
    shape = (N, groups, cpg) + sp
    xs = as_shape(x, shape, (x.strides[0], x.strides[1] * cpg, x.strides[1]) + tuple(x.strides[2:]))
    ys = as_shape(y, shape, (y.strides[0], y.strides[1] * cpg, y.strides[1]) + tuple(y.strides[2:]))
    wv = (w.obj, w.strides[0]) if w is not None else (None, 0)
    bv = (b.obj, b.strides[0]) if b is not None else (None, 0)
    # scale index of channel ch of group g: g * cpg + ch (per channel) or g (per group)
    channels = (S, cpg, groups, cpg, 1) if per_channel else (S, cpg, groups, 1, 0)
    rows_norm(op, xs, ys, 1 + len(sp), wv, bv, eps, channels)


def batch_norm_into(X, scale, bias, mean, var, eps: float, Y) -> None:
    """Y = (X - mean[c]) / sqrt(var[c] + eps) * scale[c] + bias[c] over X of shape (N, C, ...)."""
    op = "BatchNormalization"
    ctx, (x, s, b, m, v), (y,) = begin(op, [X, scale, bias, mean, var], [Y])
    x2, (R0, R1, S), sx, sy = rows_view(op, x, y, x.ndim - 2)
    if R0 * R1 * S == 0:
        return
    C = x.shape[1]
    block = min(AFFINE_BLOCK, max(16, 1 << max(0, S - 1).bit_length()))
    channel_affine_kernel[(R0 * R1, -(-S // block))](x2.obj, y.obj, s.obj, b.obj, m.obj, v.obj, R1, S, C, float(eps),
                                                      *sx, *sy, s.strides[0], b.strides[0], m.strides[0],
                                                      v.strides[0], ACC=acc_type(x.dtype.name), BLOCK=block)


# ----------------------------------------------------------------------------- definitions
def _outputs(op: str, attrs, most: int) -> int:
    n = attrs.get(NUM_OUTPUTS) or 1
    if n > most:
        raise UnsupportedError(f"{op}: {n} outputs asked for; kaiyuan computes the first {most}",
                               hint="the extra outputs belong to training mode" if most == 1 else None)
    return n


def _ln_infer(types, attrs, consts):
    op = "LayerNormalization"
    x = types[0]
    check_dtype(op, x, FLOATS)
    if attrs["stash_type"] != 1:
        raise UnsupportedError(f"{op}: stash_type={attrs['stash_type']}", hint="only stash_type=1 (fp32) is supported")
    axis = norm_axis(op, attrs["axis"], x.rank)
    n = _outputs(op, attrs, 3)
    stat = TensorType(F32, tuple(x.shape[:axis]) + (1,) * (x.rank - axis))
    return [TensorType(x.dtype, tuple(x.shape))] + [stat] * (n - 1)


def _ln_run(inputs, attrs, consts, outputs):
    x = inputs[0]
    axis = norm_axis("LayerNormalization", attrs["axis"], len(x.shape))
    outs = list(outputs) + [None] * (3 - len(outputs))
    layer_norm_into(x, inputs[1], inputs[2] if len(inputs) > 2 else None, axis, attrs["epsilon"], *outs)


def _channels(op: str, types, first_param: int, count: int, what: str) -> None:
    x = types[0]
    if x.rank < 2:
        raise ArgumentError(f"{op}: input must be (N, C, ...), got shape {tuple(x.shape)}")
    for i in range(first_param, len(types)):
        t = types[i]
        if t is None:
            continue
        if t.rank != 1 or t.shape[0] != count:
            raise ArgumentError(f"{op}: input {i} has shape {tuple(t.shape)}, expected ({count},) ({what})")
        check_dtype(op, t, FLOATS, f"input {i}")


def _in_infer(dtypes: tuple):
    def infer(types, attrs, consts):
        op = "InstanceNormalization"
        check_dtype(op, types[0], dtypes)
        _channels(op, types, 1, types[0].shape[1] if types[0].rank >= 2 else 0, "one per channel")
        return [TensorType(types[0].dtype, tuple(types[0].shape))]
    return infer


def _in_run(inputs, attrs, consts, outputs):
    C = inputs[0].shape[1]
    group_norm_into("InstanceNormalization", inputs[0], inputs[1], inputs[2], C, True, attrs["epsilon"], outputs[0])


def _gn_def(since: int, until: int, per_channel: bool) -> OpDef:
    op = "GroupNormalization"

    def infer(types, attrs, consts):
        x = types[0]
        check_dtype(op, x, FLOATS)
        G = int(attrs["num_groups"])
        if x.rank < 2 or G <= 0 or x.shape[1] % G:
            raise ArgumentError(f"{op}: num_groups={G} must divide the channel count of input {tuple(x.shape)}")
        if attrs.get("stash_type", 1) != 1:
            raise UnsupportedError(f"{op}: stash_type={attrs['stash_type']}", hint="only stash_type=1 is supported")
        _channels(op, types, 1, x.shape[1] if per_channel else G, "one per channel" if per_channel else "one per group")
        return [TensorType(x.dtype, tuple(x.shape))]

    def run(inputs, attrs, consts, outputs):
        group_norm_into(op, inputs[0], inputs[1], inputs[2], int(attrs["num_groups"]), per_channel,
                        attrs["epsilon"], outputs[0])

    attrs = {"epsilon": 1e-5, "num_groups": None}
    if per_channel:
        attrs["stash_type"] = 1
    return OpDef(op, infer, run, since=since, until=until, inputs=(3, 3), attrs=attrs, dtypes=FLOATS,
                 doc="scale/bias per channel" if per_channel else "scale/bias per group")


def _bn_def(since: int, until: int, dtypes: tuple) -> OpDef:
    op = "BatchNormalization"

    def infer(types, attrs, consts):
        check_dtype(op, types[0], dtypes)
        if attrs.get("training_mode", 0):
            raise UnsupportedError(f"{op}: training_mode=1", hint="kaiyuan runs BatchNormalization for inference only")
        _outputs(op, attrs, 1)
        _channels(op, types, 1, types[0].shape[1] if types[0].rank >= 2 else 0, "one per channel")
        return [TensorType(types[0].dtype, tuple(types[0].shape))]

    def run(inputs, attrs, consts, outputs):
        batch_norm_into(*inputs[:5], attrs["epsilon"], outputs[0])

    attrs = {"epsilon": 1e-5, "momentum": 0.9, NUM_OUTPUTS: None}
    if since >= 14:
        attrs["training_mode"] = 0
    return OpDef(op, infer, run, since=since, until=until, inputs=(5, 5), outputs=(1, 5 if since < 14 else 3),
                 attrs=attrs, dtypes=dtypes, doc="inference mode")


register(OpDef("LayerNormalization", _ln_infer, _ln_run, since=17, inputs=(2, 3), outputs=(1, 3),
               attrs={"axis": -1, "epsilon": 1e-5, "stash_type": 1, NUM_OUTPUTS: None}, dtypes=FLOATS,
               doc="Mean/InvStdDev outputs when the graph engine passes _num_outputs"))
register(OpDef("InstanceNormalization", _in_infer(("float32", "float64", "float16")), _in_run, since=6, until=21,
               inputs=(3, 3), attrs={"epsilon": 1e-5}, dtypes=("float32", "float64", "float16")))
register(OpDef("InstanceNormalization", _in_infer(FLOATS), _in_run, since=22, inputs=(3, 3), attrs={"epsilon": 1e-5},
               dtypes=FLOATS, doc="opset 22: bf16 too"))
register(_gn_def(18, 20, per_channel=False))
register(_gn_def(21, 10**9, per_channel=True))
register(_bn_def(9, 13, ("float32", "float64", "float16")))
register(_bn_def(14, 14, FLOATS))
register(_bn_def(15, 10**9, FLOATS))
