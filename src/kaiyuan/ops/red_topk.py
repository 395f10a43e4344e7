"""ONNX TopK (opset 11): the k largest (or smallest) elements along an axis, and their indices.

Definition
    Inputs X and K (a constant 1-element int64 tensor); attributes axis (-1), largest (1), sorted
    (1). Outputs Values (X's dtype) and Indices (int64), X's shape with k along the axis, in
    order from the best; equal values keep their index order (the lower index first), as ONNX
    says and its reference does. sorted=0 leaves the order free: kaiyuan sorts anyway.
    NaN counts as larger than +inf (a NaN with the sign bit set as smaller than -inf); -0.0 and
    +0.0 are equal.
dtypes
    fp32, fp64, fp16, bf16, int8/16/32/64, uint8/16/32/64.
Kernel (topk_kernel: one program per row)
    1. Keys: every element becomes an int32 (fp32/fp16/bf16, ints up to 32 bits) or int64 whose
       order is the wanted order (a float's bits with the magnitude bits flipped when negative;
       bitwise-not for smallest).
    2. Threshold: the k-th best key T, found bit by bit from the top (32 or 64 counting passes
       over the row: is #{key >= prefix | bit} still >= k?).
    3. Selection: the elements with key > T and, among those equal to T, the first k - #{key > T}
       by index, written in index order (two kl.cumsum compactions) to a scratch row.
    4. Order: each selected element's output position is its rank among the k selected
       (#{better key} + #{equal key at a lower index}), counted on BLOCK x BLOCK tiles.
    Cost per row: 32 (64) passes over the N elements plus k*k comparisons — meant for k up to a few
    thousand (detection heads, sampling); a full sort of a long row (k = N = 10^5) is slow.
"""

from __future__ import annotations

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import ArgumentError
from .red_common import FLOATS, INT64, INTS8, INTS32_64, begin, check_dtype, const_ints, norm_axis, scratch
from .red_kernels import SHAPE_ARGS, unit
from .red_layout import plan
from .schema import OpDef, TensorType, register

DTYPES = FLOATS + INTS32_64 + INTS8 + ("int16", "uint16")
COUNT_BLOCK = 1024
RANK_BLOCK = 64
INT64_MIN = -(2**63)
# order_key's kinds: 0 a float as fp32 bits, 1 fp64 bits, 2 an int that fits int32, 3 one that
# fits int64, 4 uint64 (sign bit flipped). 32-bit keys need 32 counting passes instead of 64.
KEYS = {"fp32": 0, "fp16": 0, "bf16": 0, "fp64": 1, "i8": 2, "i16": 2, "i32": 2, "u8": 2, "u16": 2,
        "i64": 3, "u32": 3, "u64": 4}


@jit
def order_key(x, KEY: kl.constexpr, LARGEST: kl.constexpr):
    """An integer per element, larger for a better element (see KEYS for the kinds)."""
    if KEY == 0:
        b = (x.to(kl.float32) + 0.0).to(kl.int32, bitcast=True)     # + 0.0 turns -0.0 into +0.0
        key = b ^ ((b >> 31) & 0x7FFFFFFF)
    elif KEY == 1:
        b = (x + 0.0).to(kl.int64, bitcast=True)
        key = b ^ ((b >> 63) & 0x7FFFFFFFFFFFFFFF)
    elif KEY == 2:
        key = x.to(kl.int32)
    elif KEY == 3:
        key = x.to(kl.int64)
    else:
        key = x.to(kl.int64, bitcast=True) ^ INT64_MIN
    if not LARGEST:
        key = ~key
    return key


@jit
def count_keys(x_ptr, N, sx, t, STRICT: kl.constexpr, KEY: kl.constexpr, LARGEST: kl.constexpr,
               BLOCK: kl.constexpr):
    """#{key >= t} (STRICT: #{key > t}) over the row."""
    c = kl.zeros((BLOCK,), kl.int32)
    for r in range(0, N, BLOCK):
        rr = r + kl.arange(0, BLOCK)
        m = rr < N
        key = order_key(kl.load(x_ptr + rr * sx, mask=m, other=0), KEY, LARGEST)
        if STRICT:
            c += (m & (key > t)).to(kl.int32)
        else:
            c += (m & (key >= t)).to(kl.int32)
    return kl.sum(c, axis=0)


@jit
def threshold(x_ptr, N, sx, k, KEY: kl.constexpr, LARGEST: kl.constexpr, BITS: kl.constexpr,
              BLOCK: kl.constexpr):
    """The k-th largest key (a BITS-bit integer): the sign bit first, then each lower bit from the
    top, each decided by one counting pass over the row."""
    if BITS == 64:
        zero = kl.zeros((), kl.int64)
        low = zero + INT64_MIN
    else:
        zero = kl.zeros((), kl.int32)
        low = zero - 2147483647 - 1
    prefix = kl.where(count_keys(x_ptr, N, sx, zero, False, KEY, LARGEST, BLOCK) >= k, zero, low)
    one = zero + 1
    for j in range(BITS - 1):
        t = prefix | (one << (BITS - 2 - j))
        prefix = kl.where(count_keys(x_ptr, N, sx, t, False, KEY, LARGEST, BLOCK) >= k, t, prefix)
    return prefix


@jit(do_not_specialize=SHAPE_ARGS)
def topk_kernel(x_ptr, v_ptr, i_ptr, key_ptr, idx_ptr, O1, I, Q0, Q1, Q2, sxo0, sxo1, sxi, syo0, syo1, syi,
                sxq0, sxq1, sxq2, syq0, syq1, syq2, K,
                KEY: kl.constexpr, LARGEST: kl.constexpr, BITS: kl.constexpr, XR: kl.constexpr,
                BLOCK: kl.constexpr, RBLOCK: kl.constexpr):
    sxq2 = unit(sxq2, XR)
    pid = kl.program_id(0)
    col = kl.program_id(1)
    x_ptr += (pid // O1) * sxo0 + (pid % O1) * sxo1 + col * sxi
    yoff = (pid // O1) * syo0 + (pid % O1) * syo1 + col * syi
    row = pid * I + col
    key_ptr += row * K       # this row's scratch: K keys and K indices, in index order
    idx_ptr += row * K
    t = threshold(x_ptr, Q2, sxq2, K, KEY, LARGEST, BITS, BLOCK)
    ties = K - count_keys(x_ptr, Q2, sxq2, t, True, KEY, LARGEST, BLOCK)
    # selection: key > t, and the first `K - #{key > t}` of those equal to t
    n_eq = 0
    n_sel = 0
    for r in range(0, Q2, BLOCK):
        rr = r + kl.arange(0, BLOCK)
        m = rr < Q2
        key = order_key(kl.load(x_ptr + rr * sxq2, mask=m, other=0), KEY, LARGEST)
        gt = (m & (key > t)).to(kl.int32)
        eq = (m & (key == t)).to(kl.int32)
        ties_before = kl.cumsum(eq, axis=0) - eq + n_eq
        sel = gt | (eq & (ties_before < ties)).to(kl.int32)
        pos = kl.cumsum(sel, axis=0) - sel + n_sel
        kl.store(key_ptr + pos, key, mask=sel != 0)
        kl.store(idx_ptr + pos, rr, mask=sel != 0)
        n_eq += kl.sum(eq, axis=0)
        n_sel += kl.sum(sel, axis=0)
    kl.debug_barrier()
    # order: rank = #{better key} + #{equal key earlier}; scratch is in index order
    for i0 in range(0, K, RBLOCK):
        ii = i0 + kl.arange(0, RBLOCK)
        mi = ii < K
        ki = kl.load(key_ptr + ii, mask=mi, other=0)
        rank = kl.zeros((RBLOCK,), kl.int32)
        for j0 in range(0, K, RBLOCK):
            jj = j0 + kl.arange(0, RBLOCK)
            kj = kl.load(key_ptr + jj, mask=jj < K, other=0)
            before = (kj[None, :] > ki[:, None]) | ((kj[None, :] == ki[:, None]) & (jj[None, :] < ii[:, None]))
            rank += kl.sum((before & (jj < K)[None, :]).to(kl.int32), axis=1)
        idx = kl.load(idx_ptr + ii, mask=mi, other=0)
        kl.store(v_ptr + yoff + rank * syq2, kl.load(x_ptr + idx * sxq2, mask=mi), mask=mi)
        kl.store(i_ptr + yoff + rank * syq2, idx, mask=mi)


def topk_into(input, k: int, axis: int, largest: bool, values, indices) -> None:
    """values/indices (preallocated, contiguous, x's shape with k on `axis`) = TopK of input."""
    ctx, (x,), (v, ix) = begin("TopK", [input], [values, indices])
    L = plan("TopK", x, [axis], v.strides)
    n = L.count
    if k == 0 or L.outputs == 0:
        return
    keys, idx = scratch(v.obj, (L.outputs * k,), "i64"), scratch(v.obj, (L.outputs * k,), "i32")
    key = KEYS[x.dtype.name]
    grid = (L.kept[0][0] * L.kept[1][0], L.kept[2][0])   # one program per row
    topk_kernel[grid](L.x.obj, v.obj, ix.obj, keys, idx, *L.args(), k, KEY=key, LARGEST=bool(largest),
                      BITS=64 if key in (1, 3, 4) else 32, XR=L.meta()["XR"], BLOCK=64 if n <= 64 else COUNT_BLOCK,
                      RBLOCK=16 if k <= 16 else RANK_BLOCK)


def _k_axis(types, attrs, consts) -> tuple[int, int]:
    x = types[0]
    if x.rank == 0:
        raise ArgumentError("TopK: the input must have at least one dim")
    axis = norm_axis("TopK", attrs["axis"], x.rank)
    k = const_ints("TopK", consts, types, 1, "K")
    if k is None or len(k) != 1:
        raise ArgumentError("TopK: K must be a 1-element int64 tensor")
    if not 0 <= k[0] <= x.shape[axis]:
        raise ArgumentError(f"TopK: K={k[0]} is outside [0, {x.shape[axis]}] (the size of axis {attrs['axis']})")
    return k[0], axis


def _infer(types, attrs, consts):
    check_dtype("TopK", types[0], DTYPES)
    k, axis = _k_axis(types, attrs, consts)
    shape = tuple(k if d == axis else n for d, n in enumerate(types[0].shape))
    return [TensorType(types[0].dtype, shape), TensorType(INT64, shape)]


def _run(inputs, attrs, consts, outputs):
    types = [TensorType(a.dtype, tuple(a.shape)) for a in inputs]
    k, axis = _k_axis(types, attrs, consts)
    topk_into(inputs[0], k, axis, attrs["largest"] != 0, outputs[0], outputs[1])


register(OpDef("TopK", _infer, _run, since=11, inputs=(2, 2), outputs=(2, 2), value_inputs=(1,),
               attrs={"axis": -1, "largest": 1, "sorted": 1}, dtypes=DTYPES,
               doc="values and int64 indices, sorted, ties by lower index"))
