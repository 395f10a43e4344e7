"""`ky.ops.conv2d`: 2-D convolution (cross-correlation), NCHW, as torch.nn.functional.conv2d.

Definition
    conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)
        input (N, C, H, W) or (C, H, W); weight (OC, C // groups, KH, KW); bias (OC,)
        -> (N, OC, OH, OW), OH = (H + 2*pad_h - dil_h*(KH-1) - 1) // stride_h + 1 (same for W).
        stride/padding/dilation: an int or a pair; padding also "valid" (0) or "same"
        (stride 1 only; when dil*(k-1) is odd torch pads one more on the right/bottom: here
        UnsupportedError).
    conv2d(..., residual=None, activation=None)   kaiyuan's fused epilogue
        -> activation(conv + bias + residual): residual has the output's shape (any strides);
        activation None, "relu", "gelu", "gelu_tanh" or "silu" (the GEMM epilogue's set). The
        graph engine's conv epilogue fusion (kaiyuan.Conv) runs through it.
dtypes
    fp32, fp64, fp16, bf16 (fp32 accumulation; result in the input dtype).
Kernel
    Implicit GEMM, per image n and group g (grid axes 1, 2): M = OC/groups output channels,
    N = flat output pixels, K = C/groups * KH * KW in the weight's own (c, kh, kw) order, so the A
    tile (channels x K) is a row-contiguous slice of the weight. The B tile (K x pixels) is read
    from a source in which every tap row is affine in the pixel index, so each tile row is one
    contiguous (masked) vector load on cpu: unpadded stride-1 1x1 convs read the input in place
    (pixel j = oh * W + ow); every other conv first runs `conv2d_prep_kernel`, one pass writing a
    zero-padded, phase-split copy xs[n, c, ph, pw, qh, qw] = xpad[n, c, qh*s_h + ph, qw*s_w + pw]
    (Wq = ceil((W + 2 pad_w) / s_w) columns, or W + pad_w at stride 1, where a row's right padding
    is the next row's left padding; one spare row), in which tap (kh, kw) of pixel
    j = oh * Wq + ow is at phase plane (kh*dil_h % s_h, kw*dil_w % s_w), offset
    (kh*dil_h // s_h) * Wq + kw*dil_w // s_w + j: padding and stride cost no masks in the K loop
    (columns ow >= OW are computed and not stored). K-step addresses are recomputed from k each
    step (the cpu backend reads both tiles in place, the B rows through a table of row offsets);
    KH, KW, stride and dilation are constexprs (the k -> (c, kh, kw) divisions compile to
    multiplies). Rows past OC are masked; pixels past the end only on the 1x1 in-place path (the
    copy has PREP_SPARE spare elements, so its pixel tiles load unmasked); whole BLOCK_K steps
    carry no K mask (BLOCK_K is moved to a divisor of K where one is near) and a ragged K ends
    with one masked tail step. The output is stored one output row at a time (affine in the
    pixel index: vector stores), or flat when Wq == OW. Where a row's own tiles compute fewer
    dropped columns than the Wq - OW between rows (the stem: OW = 112 is one 112-wide tile),
    tiles start at their output row instead of running on across rows (ROWS). The strided copy
    reads whole vectors and picks its phase's columns with permutes wherever its reads, past a
    row's ends, stay inside the input's span (elsewhere it gathers through clamped indices).
Tuning
    cpu: `@ky.autotune` over two tile shapes (key_bucket="pow2" on pixels, channels, K); interp:
    one fixed small config.
"""

from __future__ import annotations

import kaiyuan.language as kl

from ..compiler import jit
from ..compiler.autotune import Config, autotune, heuristics
from ..runtime.errors import ArgumentError, UnsupportedError
from ..runtime.tensor import Tensor
from ._common import (Context, check_dtype, check_offsets, check_same_dtype, collapse, contiguous, launch,
                      next_pow2, pair, span)
from ._replay import replayable
from .gemm import acc_code, activation, as_shape, check_activation, out_operand, zeros_acc

DTYPES = ("fp32", "fp64", "fp16", "bf16")


@jit
def conv2d_step(acc, k, rk, rm, rp, w_base, x_base, row_ok, col_ok, K, sxc, sxph, sxpw, sxr, sxj, swo, swk,
                KH: kl.constexpr, KW: kl.constexpr, stride_h: kl.constexpr, stride_w: kl.constexpr,
                dil_h: kl.constexpr, dil_w: kl.constexpr, TAIL: kl.constexpr, PADDED: kl.constexpr):
    """acc += A[:, k:k+BLOCK_K] @ B[k:k+BLOCK_K, :]. K index k = (c, kh, kw) in the weight's own
    order: A rows are contiguous; the B row of k starts at an offset computed from (c, kh, kw) and
    is affine in the pixel index j (addresses recomputed from k each step: the cpu backend reads
    both tiles in place). Only the TAIL step masks K; PADDED sources need no pixel mask."""
    kk = k + rk
    c = kk // (KH * KW)
    r = kk % (KH * KW)
    rh = (r // KW) * dil_h
    rw = (r % KW) * dil_w
    row_off = c * sxc + (rh % stride_h) * sxph + (rw % stride_w) * sxpw + (rh // stride_h) * sxr + \
        (rw // stride_w) * sxj
    a_ptrs = w_base + rm[:, None] * swo + kk[None, :] * swk
    b_ptrs = x_base + row_off[:, None] + rp[None, :] * sxj
    if TAIL:
        a = kl.load(a_ptrs, mask=row_ok & (kk[None, :] < K), other=0)
        b = kl.load(b_ptrs, mask=col_ok & (kk[:, None] < K), other=0)
    elif PADDED:
        a = kl.load(a_ptrs, mask=row_ok, other=0)
        b = kl.load(b_ptrs)
    else:
        a = kl.load(a_ptrs, mask=row_ok, other=0)
        b = kl.load(b_ptrs, mask=col_ok, other=0)
    return kl.dot(a, b, acc)


@jit
def conv2d_kernel(x_ptr, w_ptr, bias_ptr, y_ptr, r_ptr, P, Wq, OW, Cg, OCg, K,
                  sxn, sxc, sxph, sxpw, sxr, sxj, swo, swk, syn, syc, syh, syw, s_bias, srn, src, srh, srw,
                  KH: kl.constexpr, KW: kl.constexpr, stride_h: kl.constexpr, stride_w: kl.constexpr,
                  dil_h: kl.constexpr, dil_w: kl.constexpr, HAS_BIAS: kl.constexpr, PADDED: kl.constexpr,
                  FLAT_Y: kl.constexpr, ROWS: kl.constexpr, ACT: kl.constexpr, HAS_RES: kl.constexpr,
                  ACC: kl.constexpr, BLOCK_M: kl.constexpr, BLOCK_N: kl.constexpr, BLOCK_K: kl.constexpr):
    # tile: BLOCK_M output channels of group g x BLOCK_N flat pixels j = qh * Wq + qw of image n;
    # ROWS: the tiles of each output row start at the row (cdiv(OW, BLOCK_N) tiles per row), so
    # no tile computes the Wq - OW dropped columns between rows
    pid = kl.program_id(0)
    n = kl.program_id(1)
    g = kl.program_id(2)
    num_pid_m = kl.cdiv(OCg, BLOCK_M)
    pid_m = pid % num_pid_m
    pid_n = pid // num_pid_m
    rm = pid_m * BLOCK_M + kl.arange(0, BLOCK_M)
    if ROWS:
        row_tiles = kl.cdiv(OW, BLOCK_N)
        oh_t = pid_n // row_tiles
        c0 = (pid_n % row_tiles) * BLOCK_N     # the tile's first output column
        rp = oh_t * Wq + c0 + kl.arange(0, BLOCK_N)
    else:
        rp = pid_n * BLOCK_N + kl.arange(0, BLOCK_N)
    rk = kl.arange(0, BLOCK_K)
    # x is either the phase-split padded copy (Wq >= OW: columns qw >= OW are computed, not stored)
    # or, for unpadded stride-1 convs with OW == W, the input itself (Wq == W, no phases)
    x_base = x_ptr + n * sxn + g * Cg * sxc
    w_base = w_ptr + g * OCg * swo
    row_ok = rm[:, None] < OCg
    col_ok = rp[None, :] < P
    acc = zeros_acc(BLOCK_M, BLOCK_N, ACC)
    # whole BLOCK_K steps without a K mask, then at most one masked tail step
    k_full = (K // BLOCK_K) * BLOCK_K
    for k in range(0, k_full, BLOCK_K):
        acc = conv2d_step(acc, k, rk, rm, rp, w_base, x_base, row_ok, col_ok, K, sxc, sxph, sxpw, sxr, sxj, swo,
                          swk, KH, KW, stride_h, stride_w, dil_h, dil_w, False, PADDED)
    for k in range(k_full, K, BLOCK_K):
        acc = conv2d_step(acc, k, rk, rm, rp, w_base, x_base, row_ok, col_ok, K, sxc, sxph, sxpw, sxr, sxj, swo,
                          swk, KH, KW, stride_h, stride_w, dil_h, dil_w, True, PADDED)
    if HAS_BIAS:
        acc = acc + kl.load(bias_ptr + (g * OCg + rm) * s_bias, mask=rm < OCg, other=0)[:, None].to(acc.dtype)
    # epilogue: act(acc + bias + residual), ResNet's "add, then ReLU"; the residual is read with
    # the same addressing as the store, so it is added per stored row
    if ROWS:  # one output row: columns c0.. (contiguous vector stores)
        cols = c0 + kl.arange(0, BLOCK_N)
        keep = row_ok & (cols < OW)[None, :]
        y_ptrs = y_ptr + n * syn + (g * OCg + rm)[:, None] * syc + oh_t * syh + cols[None, :] * syw
        if HAS_RES:
            r_ptrs = r_ptr + n * srn + (g * OCg + rm)[:, None] * src + oh_t * srh + cols[None, :] * srw
            acc = acc + kl.load(r_ptrs, mask=keep, other=0).to(acc.dtype)
        kl.store(y_ptrs, activation(acc, ACT), mask=keep)
    elif FLAT_Y:  # output rows are Wq == OW apart: pixel j is at j * syw (contiguous vector stores)
        y_ptrs = y_ptr + n * syn + (g * OCg + rm)[:, None] * syc + rp[None, :] * syw
        if HAS_RES:
            r_ptrs = r_ptr + n * srn + (g * OCg + rm)[:, None] * src + rp[None, :] * srw
            acc = acc + kl.load(r_ptrs, mask=row_ok & col_ok, other=0).to(acc.dtype)
        kl.store(y_ptrs, activation(acc, ACT), mask=row_ok & col_ok)
    else:
        # one masked store per output row the tile touches: within row oh, pixel j is (j - oh * Wq)
        # columns past the row's start, affine in j (vector stores; (j // Wq, j % Wq) per pixel
        # would make every element a scalar store)
        if not HAS_RES:
            acc = activation(acc, ACT)
        y_base = y_ptr + n * syn + (g * OCg + rm)[:, None] * syc
        r_base = r_ptr + n * srn + (g * OCg + rm)[:, None] * src
        j0 = pid_n * BLOCK_N
        for oh in range(j0 // Wq, kl.minimum((j0 + BLOCK_N - 1) // Wq + 1, P // Wq)):
            start = oh * Wq
            in_row = (rp >= start) & (rp < start + OW)
            if HAS_RES:
                res = kl.load(r_base + oh * srh + (rp - start)[None, :] * srw, mask=row_ok & in_row[None, :], other=0)
                kl.store(y_base + oh * syh + (rp - start)[None, :] * syw, activation(acc + res.to(acc.dtype), ACT),
                         mask=row_ok & in_row[None, :])
            else:
                kl.store(y_base + oh * syh + (rp - start)[None, :] * syw, acc, mask=row_ok & in_row[None, :])


@jit
def conv2d_prep_kernel(x_ptr, xs_ptr, H, W, Hq1, Wq, C, sxn, sxc, sxh, sxw, pad_h, pad_w, x_span,
                       stride_h: kl.constexpr, stride_w: kl.constexpr, BLOCK_R: kl.constexpr, BLOCK_W: kl.constexpr):
    # xs[n, c, ph, pw, qh, qw] = x[n, c, qh * stride_h + ph - pad_h, qw * stride_w + pw - pad_w] (0 outside).
    # Grid: (N * C planes, stride_h * stride_w phases, row blocks of one plane), so the phase and the
    # plane are per-program scalars and a row is qh itself: no per-element division (vector integer
    # division has no SIMD instruction; the flat-row version spent most of its time dividing).
    plane = kl.program_id(0)
    phase = kl.program_id(1)
    n = plane // C
    c = plane % C
    ph = phase // stride_w
    pw = phase % stride_w
    qh = kl.program_id(2) * BLOCK_R + kl.arange(0, BLOCK_R)
    qw = kl.arange(0, BLOCK_W)
    ih = qh * stride_h + ph - pad_h
    iw = qw * stride_w + pw - pad_w
    row_ok = qh < Hq1
    col_ok = qw < Wq
    ok = (row_ok & (ih >= 0) & (ih < H))[:, None] & ((iw >= 0) & (iw < W) & col_ok)[None, :]
    dst = xs_ptr + (plane * (stride_h * stride_w) + phase) * Hq1 * Wq + (qh * Wq)[:, None] + qw[None, :]
    keep = row_ok[:, None] & col_ok[None, :]
    if stride_w == 1:  # masked unit-stride loads: vector loads under a mask
        kl.store(dst, kl.load(x_ptr + n * sxn + c * sxc + ih[:, None] * sxh + iw[None, :] * sxw, mask=ok, other=0),
                 mask=keep)
    else:
        # gcc vectorizes no masked load at a stride other than 1 (each element was a scalar load
        # and branch): load unmasked, then select the padding. Rows are clamped into the image
        # (per row: the address stays affine in qw); columns are read as they fall, past the row's
        # ends into the neighbouring rows' elements, which `ok` drops, when every address of this
        # program's rows is inside the input's span (x_span elements from x_ptr): gcc then loads
        # whole vectors and picks every stride_w-th element with permutes. Only the programs
        # that hold the input's first or last row (reading before its first or past its last
        # element) clamp the columns too, which makes the load a gather. The stem's copy
        # (3x224x224, stride 2): 160 us with masked loads, 93-135 with gathers everywhere,
        # 78-105 now (four interleaved runs).
        ihc = kl.minimum(kl.maximum(ih, 0), H - 1)
        rows = x_ptr + n * sxn + c * sxc + ihc[:, None] * sxh
        first = kl.minimum(kl.maximum(kl.program_id(2) * BLOCK_R * stride_h + ph - pad_h, 0), H - 1)
        last = kl.minimum(kl.maximum((kl.program_id(2) * BLOCK_R + BLOCK_R - 1) * stride_h + ph - pad_h, 0), H - 1)
        lo = n * sxn + c * sxc + first * sxh + (pw - pad_w) * sxw
        hi = n * sxn + c * sxc + last * sxh + ((BLOCK_W - 1) * stride_w + pw - pad_w) * sxw
        if (lo >= 0) & (hi < x_span):  # each branch stores: a tile result of `if` is a copy
            kl.store(dst, kl.where(ok, kl.load(rows + iw[None, :] * sxw), 0), mask=keep)
        else:
            iwc = kl.minimum(kl.maximum(iw, 0), W - 1)
            kl.store(dst, kl.where(ok, kl.load(rows + iwc[None, :] * sxw), 0), mask=keep)


def _block_k(args) -> int:
    """The config's BLOCK_K, or a divisor of K near it, or K itself when smaller (no tail step: the
    stem's K = 3*7*7 = 147 takes one step of 147 instead of one of 128 and a tail that is 85% zero
    padding, and only whole steps read their tiles in place)."""
    K, bk = args["K"], args["BLOCK_K"]
    if K <= bk:
        return K
    if K % bk == 0:
        return bk
    near = [d for d in range(bk // 2, 2 * bk + 1) if K % d == 0]
    return min(near, key=lambda d: abs(d - bk)) if near else bk


def _widths(bn: int):
    """The pixel tile widths _block_n chooses from: multiples of 16 (whole vectors), bn - 16 .. 2 bn."""
    return range(max(16, bn - 16), 2 * bn + 1, 16)


def _block_n(args) -> int:
    """The pixel tile width: the one of _widths(BLOCK_N) that leaves the fewest computed pixels
    past P (ROWS: past each output row's OW), the widest of equals. A 14x14 layer (P = 14 * 16 =
    224 with its padded columns) then takes two tiles of 112 instead of four of 64 that compute
    32 pixels of nothing: its kernel measured ~10% faster."""
    P, bn = args["OW"] if args["ROWS"] else args["P"], args["BLOCK_N"]
    if P <= bn:
        return bn
    return min(_widths(bn), key=lambda w: (-(-P // w) * w, -w))


def _row_tiles(OW: int, Wq: int) -> bool:
    """Tile each output row on its own (ROWS) when that computes fewer dropped columns than flat
    tiles do (Wq - OW of every Wq). The stem: OW = 112 is one tile of 112, where flat tiles
    computed 3 dropped columns of every 115; a 56-wide 3x3 layer stays flat (1 of 57, against
    8 of a 64-wide tile)."""
    if Wq == OW:
        return False
    bn = CPU_CONFIGS[0].kwargs["BLOCK_N"]
    waste = min(-(-OW // w) * w for w in _widths(bn)) - OW
    return waste * Wq < (Wq - OW) * OW


conv2d_fixed = heuristics({"BLOCK_K": _block_k, "BLOCK_N": _block_n})(conv2d_kernel)
# Output channels x flat pixels x K. A 128-deep K step halves the per-step work that does not scale
# with K (the row-offset table, the dot's accumulator loads and stores per register block):
# 64x64x128 measured 3-15% faster than 64x64x64 on every ResNet-50 layer (2 cores, Zen 4) and
# 64x128x32 on the stem (K = 147 is then one step); 128-row tiles serve OC >= 128 (the 3x3 layers
# of stages 2 and 3 by a few per cent), and are pruned to nothing when OC is 64 by the tuner's timing.
CPU_CONFIGS = [
    Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 128}),
    Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 128}),
]
INTERP_CONFIG = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32}
conv2d_tuned = autotune(configs=CPU_CONFIGS, key=["P", "Cg", "OCg", "K", "x_ptr"], key_bucket="pow2")(conv2d_fixed)
PREP_ELEMS = {"fast": 4096, "reference": 256}  # elements per program of the prep kernel
# Elements after the padded copy: the last pixel tile reads up to BLOCK_N - 1 columns past the
# last pixel unmasked (those columns are computed, never stored)
PREP_SPARE = 2 * max(c.kwargs["BLOCK_N"] for c in CPU_CONFIGS)  # (_block_n widens tiles up to 2x)


def _padding(padding, kh: int, kw: int, dil: tuple, stride: tuple):
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise ArgumentError("conv2d: padding='same' needs stride 1 (as in torch)")
            tot = (dil[0] * (kh - 1), dil[1] * (kw - 1))
            if tot[0] % 2 or tot[1] % 2:
                raise UnsupportedError("conv2d: padding='same' with an even effective kernel size needs "
                                       "asymmetric padding", hint="pad the input explicitly, or use an odd kernel")
            return tot[0] // 2, tot[1] // 2
        raise ArgumentError(f"conv2d: padding {padding!r} is not 'valid', 'same', an int or a pair")
    return pair(padding, "padding", "conv2d")


@replayable
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, out=None, *, residual=None,
           activation=None):
    """torch.nn.functional.conv2d on NCHW inputs, as an implicit GEMM (see the module doc).
    `out`: an optional preallocated contiguous result (see gemm.out_operand), which is returned.
    Epilogue (kaiyuan's, fused into the kernel): `activation(conv + bias + residual)`, with
    `residual` of the output's shape and `activation` one of None, "relu", "gelu", "gelu_tanh",
    "silu" — a ResNet block's "add, then ReLU" in the convolution's own store."""
    act = check_activation("conv2d", activation)
    ctx = Context("conv2d", (input, weight, bias, out, residual))
    x, w = ctx.operand(input, "input"), ctx.operand(weight, "weight")
    check_dtype("conv2d", x, DTYPES)
    check_dtype("conv2d", w, DTYPES)
    check_same_dtype("conv2d", x, w)
    unbatched = x.ndim == 3
    if unbatched:
        x = x.reshaped((1,) + x.shape, (0,) + x.strides)
    if x.ndim != 4 or w.ndim != 4:
        raise ArgumentError(f"conv2d: input must be (N, C, H, W) or (C, H, W) and weight (OC, C/groups, KH, KW); "
                            f"got {tuple(x.shape)} and {tuple(w.shape)}")
    N, C, H, W = x.shape
    OC, Cg, KH, KW = w.shape
    if not isinstance(groups, int) or groups < 1 or C % groups or OC % groups or Cg != C // groups:
        raise ArgumentError(f"conv2d: input has {C} channels, weight {tuple(w.shape)}, groups={groups}: need "
                            "C % groups == 0, OC % groups == 0 and weight.shape[1] == C // groups")
    st, dil = pair(stride, "stride", "conv2d"), pair(dilation, "dilation", "conv2d")
    if min(st) < 1 or min(dil) < 1:
        raise ArgumentError(f"conv2d: stride {st} and dilation {dil} must be positive")
    pad = _padding(padding, KH, KW, dil, st)
    if min(pad) < 0:
        raise ArgumentError(f"conv2d: negative padding {pad}")
    OH = (H + 2 * pad[0] - dil[0] * (KH - 1) - 1) // st[0] + 1
    OW = (W + 2 * pad[1] - dil[1] * (KW - 1) - 1) // st[1] + 1
    if OH <= 0 or OW <= 0:
        raise ArgumentError(f"conv2d: the (dilated) kernel {KH}x{KW} does not fit the padded input {H}x{W}")
    b = None
    if bias is not None:
        b = ctx.operand(bias, "bias")
        check_dtype("conv2d", b, DTYPES)
        if tuple(b.shape) != (OC,):
            raise ArgumentError(f"conv2d: bias must have shape ({OC},), got {tuple(b.shape)}")
    if out is not None:
        y = as_shape(out_operand(ctx, out, (OC, OH, OW) if unbatched else (N, OC, OH, OW), x.dtype), (N, OC, OH, OW))
    else:
        y = ctx.output((N, OC, OH, OW), x.dtype)
    r = _residual(ctx, residual, x.dtype, (N, OC, OH, OW), unbatched)
    check_offsets("conv2d", x, w, y, *([r] if r is not None else []))
    OCg = OC // groups
    if N * OH * OW > 0 and OCg > 0:
        _launch(ctx, x, w, b, y, st, pad, dil, groups, OH, OW, r, act)
    if out is not None:
        return out
    if unbatched:
        t = y.obj
        y.obj = Tensor(t.buffer, (OC, OH, OW), t.dtype, None, t.offset)
    return ctx.result(y)


def _residual(ctx, residual, dtype, shape, unbatched):
    """The residual operand seen as (N, OC, OH, OW) (any strides), or None."""
    if residual is None:
        return None
    r = ctx.operand(residual, "residual")
    check_dtype("conv2d", r, DTYPES)
    if r.dtype != dtype:
        raise ArgumentError(f"conv2d: residual is {r.dtype.name}, the output {dtype.name}")
    want = shape[1:] if unbatched else shape
    if tuple(r.shape) != tuple(want):
        raise ArgumentError(f"conv2d: residual must have the output's shape {tuple(want)}, got {tuple(r.shape)}")
    return r.reshaped((1,) + r.shape, (0,) + r.strides) if unbatched else r


def _launch(ctx, x, w, b, y, st, pad, dil, groups, OH, OW, r=None, act=0):
    N, C, H, W = x.shape
    OC, Cg, KH, KW = w.shape
    OCg, K = OC // groups, Cg * KH * KW
    # A = the weight as (OC, K): its last three dims must fold into one strided dim
    wdims, (wst,) = collapse((Cg, KH, KW), w.strides[1:])
    if len(wdims) != 1:
        w = contiguous(w)
        wdims, (wst,) = collapse((Cg, KH, KW), w.strides[1:])
    swk = wst[0]
    sxn, sxc, sxh, sxw = x.strides
    if st == (1, 1) and pad == (0, 0) and KW == 1 and (OH == 1 or sxh == W * sxw):
        # read the input in place (1x1 convs): the flat pixel index j = oh * W + ow is affine in the
        # address and every tap of an output pixel is inside the image (no padding, OW == W)
        src, Wq, strides = x, W, (sxn, sxc, 0, 0, sxh, sxw)
    else:
        # zero-padded, phase-split copy xs[n, c, ph, pw, qh, qw] (qh < Hq + 1: one spare row, so
        # the garbage columns qw >= OW of the last row stay in bounds); stride-s taps become
        # stride-1 taps of phase plane (kh*dil % s, kw*dil % s): affine in j = qh * Wq + qw
        Hq = -(-(H + 2 * pad[0]) // st[0])
        Wq = -(-(W + 2 * pad[1]) // st[1])
        if st[1] == 1 and pad[1] <= dil[1] * (KW - 1):
            # one shared pad zone per row: the left padding of row r + 1 is the right padding of
            # row r (a tap past the row's end lands in the next row's leading zeros), so each
            # row carries pad_w computed-and-dropped columns instead of 2 * pad_w (28x28: 3.5%
            # of the work, 14x14: 7%, 7x7: 11%); OW <= Wq needs pad_w <= dil_w * (KW - 1)
            Wq = W + pad[1]
        L = st[0] * st[1] * (Hq + 1) * Wq
        spare = PREP_SPARE if not ctx.is_reference else 2 * INTERP_CONFIG["BLOCK_N"]
        src = ctx.output((N * C * L + spare,), x.dtype)
        check_offsets("conv2d", src)
        bw = next_pow2(Wq)
        br = max(1, min(next_pow2(Hq + 1), PREP_ELEMS["reference" if ctx.is_reference else "fast"] // bw))
        conv2d_prep_kernel[(N * C, st[0] * st[1], -(-(Hq + 1) // br))](
            x.obj, src.obj, H, W, Hq + 1, Wq, C, sxn, sxc, sxh, sxw, pad[0], pad[1], span(x.shape, x.strides),
            stride_h=st[0], stride_w=st[1], BLOCK_R=br, BLOCK_W=bw)
        strides = (C * L, L, st[1] * (Hq + 1) * Wq, (Hq + 1) * Wq, Wq, 1)
    P = OH * Wq
    flat = Wq == OW and y.strides[2] == OW * y.strides[3] and (r is None or r.strides[2] == OW * r.strides[3])
    rows = _row_tiles(OW, Wq)
    args = (src.obj, w.obj, b.obj if b is not None else y.obj, y.obj, r.obj if r is not None else y.obj,
            P, Wq, OW, Cg, OCg, K, *strides, w.strides[0], swk, *y.strides, b.strides[0] if b is not None else 0,
            *(r.strides if r is not None else (0, 0, 0, 0)))
    flags = {"KH": KH, "KW": KW, "stride_h": st[0], "stride_w": st[1], "dil_h": dil[0], "dil_w": dil[1],
             "HAS_BIAS": b is not None, "PADDED": src is not x, "FLAT_Y": flat, "ROWS": rows, "ACT": act,
             "HAS_RES": r is not None, "ACC": acc_code(x.dtype.name)}

    def grid(meta):
        tiles = OH * -(-OW // meta["BLOCK_N"]) if rows else -(-P // meta["BLOCK_N"])
        return (-(-OCg // meta["BLOCK_M"]) * tiles, N, groups)

    launch(ctx, conv2d_fixed, conv2d_tuned, CPU_CONFIGS, INTERP_CONFIG, grid, args, flags)
