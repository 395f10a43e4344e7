"""`ky.ops.scaled_dot_product_attention`: torch.nn.functional.scaled_dot_product_attention, flash style.

Definition
    scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False)
        query (B, H, Lq, E), key (B, Hk, Lk, E), value (B, Hk, Lk, Ev) -> (B, H, Lq, Ev); 3-D inputs
        (B, L, E) are one head. B and H broadcast between the three (size 1 or equal); Hk == H
        unless enable_gqa (then H % Hk == 0 and query head h reads key/value head h // (H // Hk)).
        softmax(q @ k.T * scale + mask) @ v, scale = 1/sqrt(E) by default.
        attn_mask: bool (True = takes part, as torch) or a float mask added to the scores; any
        shape that broadcasts to (B, H, Lq, Lk). One that does not vary along the queries (a
        key-padding mask, (B, 1, 1, Lk)) is read as one vector per key block. is_causal: query i sees keys j <= i (torch's
        top-left alignment when Lq != Lk); with attn_mask both apply. A query row that sees no
        key gives zeros (as torch 2.x on cpu). dropout_p must be 0 (inference).
dtypes
    fp32, fp16, bf16 (scores, running max/sum and the output accumulator in fp32; p is rounded
    to the input dtype before p @ v, as torch's kernels do), fp64 (all in fp64).
Kernel
    `attention_kernel`: one program per (BLOCK_M queries, batch*head), flash style, scores
    computed transposed: a score block is BLOCK_N keys x BLOCK_M queries, s = k_blk @ q^T (K read
    in its own layout, rows of E contiguous elements; q^T loaded once), so the running max and sum
    are column reductions (vectorised along the queries on cpu), and acc (BLOCK_M x Ev) +=
    p^T @ v_blk with the usual rescaling (V read in its own layout too; on cpu the dot reads p^T
    through p's strides, K and V tiles in place, and acc is rescaled in its own storage). Scores
    are in log2 units (scale * log2(e) folded into one multiply, exp2), the output is acc times
    the reciprocal of the running sum, stored row by row. Key blocks split into an unmasked
    loop (whole blocks below Lk and, causal, below every query's diagonal: no mask, no -inf
    handling) and a masked loop (the diagonal blocks, the ragged tail past Lk, attn_mask); causal
    stops at the last diagonal block. Tile addresses come from the loop variable each step (affine:
    contiguous vector loads); rows/keys past the end are masked, never wrapped. The Lq x Lk score
    matrix never exists. E and Ev are exact tile widths (kaiyuan's arange needs no power of two).
    The scale is a constexpr (exact in fp64; the default 1/sqrt(E) adds no specialisation).
Tuning
    cpu: `@ky.autotune` over (BLOCK_M, BLOCK_N) in {(128, 128), (64, 128), (128, 64), (64, 64),
    (32, 32), (16, 16)}, blocks larger than the sequences (rounded up to a power of two) pruned
    and 16x16 only below 64 tokens, keyed on the sizes in power-of-two buckets, causality and the
    mask kind; interp: one fixed (16, 16).
"""

from __future__ import annotations

import math

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..compiler.autotune import Config, autotune
from ..runtime.errors import ArgumentError, UnsupportedError
from ..runtime.tensor import Tensor
from ._common import Context, check_dtype, check_offsets, check_same_dtype, launch
from ._replay import replayable
from .gemm import as_shape, out_operand

DTYPES = ("fp32", "fp64", "fp16", "bf16")
NEG_INF = float("-inf")


LOG2E = 1.4426950408889634


@jit
def attention_step(k, qt, v, acc, m_i, l_i, s_add, valid, QK_SCALE: kl.constexpr, MASKED: kl.constexpr,
                   ADD: kl.constexpr):
    """One key block: scores transposed (keys along rows, queries along columns), s = k @ q^T in
    log2 units, online softmax over the columns, then acc += p^T @ v (the cpu dot reads p^T
    through p's strides: no transposed copy). Unmasked steps (MASKED False) skip the -inf
    handling: every score is finite there."""
    s = kl.dot(k, qt)
    if MASKED:
        s = s * QK_SCALE
        if ADD:
            s = s + s_add
        s = kl.where(valid, s, NEG_INF)
        m_new = kl.maximum(m_i, kl.max(s, axis=0))
        m_use = kl.where(m_new == NEG_INF, 0.0, m_new)  # queries that saw no key yet
        mb = m_use[None, :]  # (the view first: the 2-D ops below then share one C loop)
        p = kl.exp2(s - mb)
    else:
        if QK_SCALE >= 0:
            m_new = kl.maximum(m_i, kl.max(s, axis=0) * QK_SCALE)
        else:
            m_new = kl.maximum(m_i, kl.min(s, axis=0) * QK_SCALE)
        m_use = m_new
        mb = m_use[None, :]  # (the view first: the 2-D ops below then share one C loop)
        p = kl.exp2(s * QK_SCALE - mb)
    alpha = kl.exp2(m_i - m_use)
    l_i = l_i * alpha + kl.sum(p, axis=0)
    acc = kl.dot(kl.trans(p.to(v.dtype)), v, acc * alpha[:, None])
    return acc, m_new, l_i


@jit
def attention_kernel(q_ptr, k_ptr, v_ptr, o_ptr, mask_ptr, H, GROUP, Lq, Lk,
                     sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd, sob, soh, som, sod,
                     smb, smh, smm, smn,
                     SCALE: kl.constexpr, E: kl.constexpr, EV: kl.constexpr, MASK: kl.constexpr, CAUSAL: kl.constexpr,
                     FP64: kl.constexpr, BLOCK_M: kl.constexpr, BLOCK_N: kl.constexpr):
    # Scores are transposed: a block is BLOCK_N keys x BLOCK_M queries, so the softmax statistics
    # are column reductions (vectorised along the queries on cpu) and K and V are read in their
    # own layout (rows of E contiguous elements); the output accumulates queries x Ev.
    QK_SCALE: kl.constexpr = SCALE * LOG2E
    pid_m = kl.program_id(0)
    bh = kl.program_id(1)
    b = bh // H
    h = bh % H
    hk = h // GROUP
    offs_m = pid_m * BLOCK_M + kl.arange(0, BLOCK_M)
    row_ok = offs_m[None, :] < Lq
    offs_n = kl.arange(0, BLOCK_N)
    offs_d = kl.arange(0, E)
    offs_dv = kl.arange(0, EV)
    qt = kl.load(q_ptr + b * sqb + h * sqh + offs_m[None, :] * sqm + offs_d[:, None] * sqd, mask=row_ok, other=0)
    k_base = k_ptr + b * skb + hk * skh
    v_base = v_ptr + b * svb + hk * svh
    m_base = mask_ptr + b * smb + h * smh
    if FP64:
        m_i = kl.full((BLOCK_M,), NEG_INF, kl.float64)
        l_i = kl.zeros((BLOCK_M,), kl.float64)
        acc = kl.zeros((BLOCK_M, EV), kl.float64)
    else:
        m_i = kl.full((BLOCK_M,), NEG_INF, kl.float32)
        l_i = kl.zeros((BLOCK_M,), kl.float32)
        acc = kl.zeros((BLOCK_M, EV), kl.float32)
    # keys [0, full) need no mask: whole blocks below Lk (and, causal, below every query's
    # diagonal); keys [full, end) take the masked step (diagonal blocks, the tail past Lk, attn_mask)
    end = Lk
    full = (Lk // BLOCK_N) * BLOCK_N
    if CAUSAL:
        end = kl.minimum(Lk, (pid_m + 1) * BLOCK_M)
        full = kl.minimum(full, ((pid_m * BLOCK_M + 1) // BLOCK_N) * BLOCK_N)
    if MASK != 0:
        full = 0
    for start in range(0, full, BLOCK_N):
        # addresses from the loop variable: affine in the tile indices (one vector load per K row)
        k = kl.load(k_base + (start + offs_n)[:, None] * skn + offs_d[None, :] * skd)
        v = kl.load(v_base + (start + offs_n)[:, None] * svn + offs_dv[None, :] * svd)
        acc, m_i, l_i = attention_step(k, qt, v, acc, m_i, l_i, 0.0, True, QK_SCALE, False, False)
    for start in range(full, end, BLOCK_N):
        cols = start + offs_n
        col_ok = cols < Lk
        k = kl.load(k_base + cols[:, None] * skn + offs_d[None, :] * skd, mask=col_ok[:, None], other=0)
        v = kl.load(v_base + cols[:, None] * svn + offs_dv[None, :] * svd, mask=col_ok[:, None], other=0)
        valid = col_ok[:, None]
        if CAUSAL:
            valid = valid & (cols[:, None] <= offs_m[None, :])
        m_ptrs = m_base + offs_m[None, :] * smm + cols[:, None] * smn
        s_add = 0.0
        if MASK == 1:
            valid = valid & (kl.load(m_ptrs, mask=row_ok & col_ok[:, None], other=0) != 0)
        if MASK == 2:
            s_add = kl.load(m_ptrs, mask=row_ok & col_ok[:, None], other=0).to(acc.dtype) * LOG2E
        # a key mask (the same for every query: BERT's padding mask) is one vector per block
        if MASK == 3:
            s_add = (kl.load(m_base + cols * smn, mask=col_ok, other=0).to(acc.dtype) * LOG2E)[:, None]
        if MASK == 4:
            valid = valid & (kl.load(m_base + cols * smn, mask=col_ok, other=0) != 0)[:, None]
        acc, m_i, l_i = attention_step(k, qt, v, acc, m_i, l_i, s_add, valid, QK_SCALE, True,
                                       (MASK == 2) | (MASK == 3))
    inv = 1.0 / kl.where(l_i == 0.0, 1.0, l_i)  # a query that saw no key: acc is 0, so zeros (torch)
    kl.store(o_ptr + b * sob + h * soh + offs_m[:, None] * som + offs_dv[None, :] * sod, acc * inv[:, None],
             mask=offs_m[:, None] < Lq)


# Large query blocks amortise the per-key-block work that does not scale with BLOCK_M, large key
# blocks the per-block rescale of the accumulator; 128 x 128 measured best at L >= 512 on a 2-core
# AVX-512 VM, 64-query blocks give short sequences more programs (and causal ones less masked work).
# Short sequences (a few sentences of a dozen tokens) take the 32- and 16-wide blocks: a 64 x 64
# block for 11 queries and 11 keys computes 34 times the scores it needs (MiniLM at 5 x 11 spent
# 0.68 ms per layer in attention).
CPU_CONFIGS = [
    Config({"BLOCK_M": 128, "BLOCK_N": 128}),
    Config({"BLOCK_M": 64, "BLOCK_N": 128}),
    Config({"BLOCK_M": 128, "BLOCK_N": 64}),
    Config({"BLOCK_M": 64, "BLOCK_N": 64}),
    Config({"BLOCK_M": 32, "BLOCK_N": 32}),
    Config({"BLOCK_M": 16, "BLOCK_N": 16}),
]
INTERP_CONFIG = {"BLOCK_M": 16, "BLOCK_N": 16}


def fitting_blocks(configs, args, **_):
    """The configs whose blocks are not larger than the sequences (rounded up to a power of two,
    at least 16), and 16x16 blocks only below 64 tokens (they never won above, and each config
    tried costs a compile on a new shape's first call); the smallest config when none is."""
    def cap(n):
        return max(16, 1 << max(0, int(n) - 1).bit_length())

    fit = [c for c in configs if c.kwargs["BLOCK_M"] <= cap(args["Lq"]) and c.kwargs["BLOCK_N"] <= cap(args["Lk"])
           and (c.kwargs["BLOCK_M"] > 16 or min(args["Lq"], args["Lk"]) < 64)]  # 16x16 only for short ones
    return fit or [min(configs, key=lambda c: c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"])]


# CAUSAL and MASK are in the key: a causal problem of one size wants smaller blocks than a full one
# (L = 128: 32x32 or 64x64 blocks 0.37-0.39 ms against 0.47 for the 64x128 that full attention picks)
attention_tuned = autotune(configs=CPU_CONFIGS, key=["H", "Lq", "Lk", "E", "EV", "q_ptr", "CAUSAL", "MASK"],
                           key_bucket="pow2",
                           prune_configs_by={"early_config_prune": fitting_blocks})(attention_kernel)


def _bcast(op: str, what: str, *sizes: int) -> int:
    out = 1
    for n in sizes:
        if n != 1:
            if out != 1 and out != n:
                raise ArgumentError(f"{op}: {what} sizes {sizes} do not broadcast")
            out = n
    return out


@replayable
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False, out=None):
    """softmax(query @ key.T * scale + mask) @ value without the score matrix (see the module doc).
    `out`: an optional preallocated contiguous result (see gemm.out_operand), which is returned."""
    op = "scaled_dot_product_attention"
    if dropout_p:
        raise UnsupportedError(f"{op}: dropout_p={dropout_p} is not supported", hint="kaiyuan.ops is inference-only: "
                               "pass dropout_p=0.0")
    ctx = Context(op, (query, key, value, attn_mask, out))
    q, k, v = ctx.operand(query, "query"), ctx.operand(key, "key"), ctx.operand(value, "value")
    for x in (q, k, v):
        check_dtype(op, x, DTYPES)
    check_same_dtype(op, q, k, v)
    three = q.ndim == 3
    if not (q.ndim == k.ndim == v.ndim) or q.ndim not in (3, 4):
        raise ArgumentError(f"{op}: query, key, value must all be 4-D (B, H, L, E) or 3-D (B, L, E); got "
                            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if three:
        q, k, v = (x.reshaped((x.shape[0], 1) + x.shape[1:], (x.strides[0], 0) + x.strides[1:]) for x in (q, k, v))
    (Bq, H, Lq, E), (Bk, Hk, Lk, Ek), (Bv, Hv, Lv, EV) = q.shape, k.shape, v.shape
    if Ek != E or Lv != Lk or Hv != Hk or Bk != Bv:
        raise ArgumentError(f"{op}: shapes query {tuple(q.shape)}, key {tuple(k.shape)}, value {tuple(v.shape)} do "
                            "not fit: need key (B, Hk, Lk, E) and value (B, Hk, Lk, Ev)")
    B = _bcast(op, "batch", Bq, Bk)
    if enable_gqa:
        if Hk == 0 or H % Hk:
            raise ArgumentError(f"{op}: enable_gqa needs query heads ({H}) divisible by key/value heads ({Hk})")
        group = H // Hk
    else:
        H = _bcast(op, "head", H, Hk)
        group = 1
    out_shape = (B, H, Lq, EV)
    if out is not None:
        o = as_shape(out_operand(ctx, out, (B, Lq, EV) if three else out_shape, q.dtype), out_shape)
    else:
        o = ctx.output(out_shape, q.dtype)
    mask_mode, m = 0, None
    ms = (0, 0, 0, 0)
    if attn_mask is not None:
        m = ctx.operand(attn_mask, "attn_mask")
        if m.dtype.name == "i1":
            mask_mode = 1
        elif m.dtype.is_floating:
            mask_mode = 2
        else:
            raise UnsupportedError(f"{op}: attn_mask has dtype {m.dtype.name}",
                                   hint="use a bool mask (True = takes part) or a float mask added to the scores")
        target = (B, H, Lq, Lk)
        try:
            if np.broadcast_shapes(tuple(m.shape), target) != target:
                raise ValueError
        except ValueError:
            raise ArgumentError(f"{op}: attn_mask of shape {tuple(m.shape)} does not broadcast to {target}") from None
        pad = 4 - m.ndim
        ms = tuple(0 if i < pad or m.shape[i - pad] == 1 else m.strides[i - pad] for i in range(4))
        if ms[2] == 0:  # the same for every query: a key mask, read as one vector per key block
            mask_mode = {1: 4, 2: 3}[mask_mode]
    check_offsets(op, q, k, v, o, *([m] if m is not None else []))
    if B * H * Lq * EV == 0:
        return _finish(ctx, o, three, out)
    if Lk == 0 or E == 0:
        if Lk == 0:  # no key at all: zeros, as a fully masked row
            if isinstance(o.obj, np.ndarray):
                o.obj.fill(0)
            else:
                o.obj.copy_(np.zeros(o.obj.shape, q.dtype.np))
            return _finish(ctx, o, three, out)
        raise UnsupportedError(f"{op}: head dim E = 0 is not supported")
    sc = float(scale) if scale is not None else 1.0 / math.sqrt(E)

    def st(x, dim, size):  # stride of a broadcast dim
        return 0 if x.shape[dim] == 1 and size != 1 else x.strides[dim]

    args = (q.obj, k.obj, v.obj, o.obj, m.obj if m is not None else o.obj, H, group, Lq, Lk,
            st(q, 0, B), st(q, 1, H), q.strides[2], q.strides[3],
            st(k, 0, B), st(k, 1, H // group), k.strides[2], k.strides[3],
            st(v, 0, B), st(v, 1, H // group), v.strides[2], v.strides[3],
            *o.strides, *ms)
    flags = {"SCALE": sc, "E": E, "EV": EV, "MASK": mask_mode, "CAUSAL": bool(is_causal), "FP64": q.dtype.name == "fp64"}

    def grid(meta):
        return (-(-Lq // meta["BLOCK_M"]), B * H)

    launch(ctx, attention_kernel, attention_tuned, CPU_CONFIGS, INTERP_CONFIG, grid, args, flags)
    return _finish(ctx, o, three, out)


def _finish(ctx: Context, o, three: bool, out=None):
    if out is not None:
        return out
    if three:
        t = o.obj
        o.obj = Tensor(t.buffer, (t.shape[0],) + t.shape[2:], t.dtype, None, t.offset)
    return ctx.result(o)
