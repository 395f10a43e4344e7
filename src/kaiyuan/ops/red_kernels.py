"""The Reduce* and ArgMax/ArgMin kernels, over the layout of red_layout.py.

reduce_kernel computes y = FIN(COMB over the reduced elements of MAP(x)) for one BLOCK_I block of
outputs per program: a BLOCK_R x BLOCK_I accumulator tile gathers the reduced elements lane by
lane (loops over Q0, Q1 and chunks of Q2), then one tile reduction finishes it.

Tile orientation (constexpr ROW): the tile's inner (last) dim is the contiguous one, because the
cpu backend vectorises a tile's last dim. ROW=1 (the reduced dim is contiguous, e.g. a reduction
over the last axis): tiles are BLOCK_I x BLOCK_R and reduce over axis 1; ROW=0: BLOCK_R x BLOCK_I,
reduced over axis 0. Every kernel of the family builds its tiles with the helpers below, so one
source serves both orientations and the reduction axis is simply `axis=ROW`.

    MAP   0 x    1 |x|    2 x*x    3 exp(x - max)   (3 needs a first pass for the max)
    COMB  0 +    1 *      2 max    3 min
    FIN   0 -    1 / N    2 sqrt   3 log            4 log(.) + max   (log-sum-exp)

Accumulation: ACC is the tile type (fp32 for fp16/bf16/fp32, fp64 for fp64, the input's own type
for integers, as ONNX does); the output store rounds once. The accumulator starts at COMB's
identity IDENT and masked lanes load OTHER, which MAP turns into IDENT, so no select is needed
and an empty reduction gives the identity (0, 1, -inf or the type's minimum, ...).

Masks: in the row case the kept index is clamped (kept_cols), so loads are masked on Q2 only;
in the column case the offsets stay affine (vector loads) and the mask includes I.

arg_kernel finds the best value, then its first (or, LAST, last) index (ArgMax/ArgMin, and
Hardmax's statistics pass); NaN beats every number, as numpy's argmax has it.
"""

from __future__ import annotations

import kaiyuan.language as kl

from ..compiler import jit

# Every integer argument is a plain run-time value: specialising each on ==1 and %16 (the jit's
# default) would multiply compilations. What the code does gain from is knowing that a tile dim is
# contiguous: the host passes that as the constexpr flags XC, XR, YC, YR (sxi, sxq2, syi, syq2 == 1),
# and `unit` turns the stride into the constant 1 so that those loads/stores become vector accesses.
SHAPE_ARGS = ["O1", "I", "Q0", "Q1", "Q2", "sxo0", "sxo1", "sxi", "syo0", "syo1", "syi", "sxq0", "sxq1", "sxq2",
              "syq0", "syq1", "syq2", "N", "K"]


@jit
def unit(s, UNIT: kl.constexpr):
    """The stride s, or the compile-time constant 1 when the host says s == 1."""
    if UNIT:
        s = 1
    return s


@jit
def outer_add(r, i, ROW: kl.constexpr):
    """The 2-D tile r[j] + i[k] of a BLOCK_R vector r and a BLOCK_I vector i, in ROW's orientation."""
    if ROW:
        t = i[:, None] + r[None, :]
    else:
        t = r[:, None] + i[None, :]
    return t


@jit
def outer_and(r, i, ROW: kl.constexpr):
    if ROW:
        t = i[:, None] & r[None, :]
    else:
        t = r[:, None] & i[None, :]
    return t


@jit
def along_i(v, ROW: kl.constexpr):
    """A BLOCK_I vector (one value per output) shaped to broadcast against a tile."""
    if ROW:
        t = v[:, None]
    else:
        t = v[None, :]
    return t


@jit
def along_r(v, ROW: kl.constexpr):
    """A BLOCK_R vector (one value per reduced position) shaped to broadcast against a tile."""
    if ROW:
        t = v[None, :]
    else:
        t = v[:, None]
    return t


@jit
def kept_cols(ii, I, sxi, ROW: kl.constexpr):
    """Offsets of the kept tile dim. Row case: lanes past I re-read the last output's row, so
    loads need only the Q2 mask (a simpler mask vectorises better). Column case: ii * sxi stays
    affine, so contiguous columns are vector loads (a clamped index would make them gathers)."""
    if ROW:
        c = kl.minimum(ii, I - 1) * sxi
    else:
        c = ii * sxi
    return c


@jit
def load_mask(rmask, imask, ROW: kl.constexpr):
    """The load mask for kept_cols' offsets: the Q2 mask, and the I mask in the column case."""
    if ROW:
        m = along_r(rmask, ROW)
    else:
        m = outer_and(rmask, imask, ROW)
    return m


@jit
def new_tile(value, ACC: kl.constexpr, BLOCK_R: kl.constexpr, BLOCK_I: kl.constexpr, ROW: kl.constexpr):
    if ROW:
        t = kl.full((BLOCK_I, BLOCK_R), value, ACC)
    else:
        t = kl.full((BLOCK_R, BLOCK_I), value, ACC)
    return t


@jit
def mapped(x, MAP: kl.constexpr):
    if MAP == 1:
        x = kl.abs(x)
    elif MAP == 2:
        x = x * x
    return x


@jit
def combined(a, b, COMB: kl.constexpr):
    if COMB == 0:
        r = a + b
    elif COMB == 1:
        r = a * b
    elif COMB == 2:
        r = kl.maximum(a, b)
    else:
        r = kl.minimum(a, b)
    return r


@jit
def mul_fn(a, b):
    return a * b


@jit
def tile_reduce(acc, COMB: kl.constexpr, ROW: kl.constexpr):
    """COMB over the reduced axis (ROW) of the accumulator tile."""
    if COMB == 0:
        r = kl.sum(acc, axis=ROW)
    elif COMB == 1:
        r = kl.reduce(acc, ROW, mul_fn)
    elif COMB == 2:
        r = kl.max(acc, axis=ROW)
    else:
        r = kl.min(acc, axis=ROW)
    return r


@jit
def accumulate(x_ptr, Q0, Q1, Q2, sxq0, sxq1, sxq2, cols, imask, shift, acc,
               MAP: kl.constexpr, COMB: kl.constexpr, OTHER: kl.constexpr, ACC: kl.constexpr,
               BLOCK_R: kl.constexpr, ROW: kl.constexpr):
    """acc COMB= MAP(x) over every reduced element (x_ptr: this program's first element; cols:
    the kept tile dim's offsets; shift: the max subtracted before exp, for MAP 3). Masked lanes
    load OTHER, which MAP takes to COMB's identity."""
    rows = kl.arange(0, BLOCK_R)
    for q0 in range(Q0):
        for q1 in range(Q1):
            p = x_ptr + q0 * sxq0 + q1 * sxq1
            for r in range(0, Q2, BLOCK_R):
                rr = r + rows
                x = kl.load(p + outer_add(rr * sxq2, cols, ROW), mask=load_mask(rr < Q2, imask, ROW),
                            other=OTHER).to(ACC)
                if MAP == 3:
                    x = kl.exp(x - along_i(shift, ROW))
                else:
                    x = mapped(x, MAP)
                acc = combined(acc, x, COMB)
    return acc


@jit(do_not_specialize=SHAPE_ARGS)
def reduce_kernel(x_ptr, y_ptr, O1, I, Q0, Q1, Q2, sxo0, sxo1, sxi, syo0, syo1, syi, sxq0, sxq1, sxq2, N,
                  MAP: kl.constexpr, COMB: kl.constexpr, FIN: kl.constexpr, IDENT: kl.constexpr,
                  OTHER: kl.constexpr, ACC: kl.constexpr, INT: kl.constexpr, XC: kl.constexpr, XR: kl.constexpr,
                  ROW: kl.constexpr, BLOCK_R: kl.constexpr, BLOCK_I: kl.constexpr):
    sxi = unit(sxi, XC)
    sxq2 = unit(sxq2, XR)
    pid = kl.program_id(0)
    o0 = pid // O1
    o1 = pid % O1
    ii = kl.program_id(1) * BLOCK_I + kl.arange(0, BLOCK_I)
    imask = ii < I
    x_ptr += o0 * sxo0 + o1 * sxo1
    cols = kept_cols(ii, I, sxi, ROW)
    shift = kl.zeros((BLOCK_I,), ACC)
    if MAP == 3:  # log-sum-exp: first the max, made finite so that all -inf rows give -inf
        top = accumulate(x_ptr, Q0, Q1, Q2, sxq0, sxq1, sxq2, cols, imask, shift,
                         new_tile(float("-inf"), ACC, BLOCK_R, BLOCK_I, ROW), 0, 2, float("-inf"), ACC, BLOCK_R, ROW)
        shift = kl.max(top, axis=ROW)
        shift = kl.where((shift == float("inf")) | (shift == float("-inf")), 0.0, shift)
    acc = accumulate(x_ptr, Q0, Q1, Q2, sxq0, sxq1, sxq2, cols, imask, shift,
                     new_tile(IDENT, ACC, BLOCK_R, BLOCK_I, ROW), MAP, COMB, OTHER, ACC, BLOCK_R, ROW)
    res = tile_reduce(acc, COMB, ROW)
    if FIN == 1:
        if INT:
            res = res // kl.maximum(N, 1)   # truncates toward zero, as numpy's integer mean
        else:
            res = res / N
    elif FIN == 2:
        if INT:
            res = kl.sqrt(res.to(kl.float64))
        else:
            res = kl.sqrt(res)
    elif FIN == 3:
        res = kl.log(res)
    elif FIN == 4:
        res = kl.log(res) + shift
    kl.store(y_ptr + o0 * syo0 + o1 * syo1 + ii * syi, res, mask=imask)


@jit
def arg_scan(x_ptr, Q2, sxq2, cols, imask, MIN: kl.constexpr, LAST: kl.constexpr, ACC: kl.constexpr,
             WORST: kl.constexpr, FLOAT: kl.constexpr, BLOCK_R: kl.constexpr, BLOCK_I: kl.constexpr,
             ROW: kl.constexpr):
    """Index (in 0..Q2-1) of the best element for each of the BLOCK_I outputs: a pass for the best
    value (NaN-propagating max/min: a NaN is the best), then a pass for its first (LAST: last)
    index. Two simple passes vectorise; one pass tracking (value, index) pairs does not.
    WORST: the worst value of ACC (-inf or the type's minimum for a max)."""
    rows = kl.arange(0, BLOCK_R)
    best = new_tile(WORST, ACC, BLOCK_R, BLOCK_I, ROW)
    for r in range(0, Q2, BLOCK_R):
        rr = r + rows
        x = kl.load(x_ptr + outer_add(rr * sxq2, cols, ROW), mask=load_mask(rr < Q2, imask, ROW), other=WORST).to(ACC)
        if MIN:
            best = kl.minimum(best, x)
        else:
            best = kl.maximum(best, x)
    if MIN:
        top = along_i(kl.min(best, axis=ROW), ROW)
    else:
        top = along_i(kl.max(best, axis=ROW), ROW)
    if LAST:
        found = new_tile(-1, kl.int32, BLOCK_R, BLOCK_I, ROW)
    else:
        found = new_tile(2147483647, kl.int32, BLOCK_R, BLOCK_I, ROW)
    # computed once here, as int32 (a bool tile read inside the loop stops gcc vectorising it)
    top_nan = (top != top).to(kl.int32)
    pos0 = outer_add(rows, kl.zeros((BLOCK_I,), kl.int32), ROW)   # a full tile: no broadcast in the loop
    for r in range(0, Q2, BLOCK_R):
        rr = r + rows
        pos = pos0 + r
        x = kl.load(x_ptr + outer_add(rr * sxq2, cols, ROW), mask=load_mask(rr < Q2, imask, ROW), other=WORST).to(ACC)
        if FLOAT:
            hit = (pos < Q2) & ((x == top) | ((x != x) & (top_nan != 0)))
        else:
            hit = (pos < Q2) & (x == top)
        if LAST:
            found = kl.maximum(found, kl.where(hit, pos, -1))
        else:
            found = kl.minimum(found, kl.where(hit, pos, 2147483647))
    if LAST:
        idx = kl.max(found, axis=ROW)
    else:
        idx = kl.min(found, axis=ROW)
    return idx


@jit(do_not_specialize=SHAPE_ARGS)
def arg_kernel(x_ptr, y_ptr, O1, I, Q0, Q1, Q2, sxo0, sxo1, sxi, syo0, syo1, syi, sxq0, sxq1, sxq2,
               MIN: kl.constexpr, LAST: kl.constexpr, ACC: kl.constexpr, WORST: kl.constexpr,
               XC: kl.constexpr, XR: kl.constexpr, ROW: kl.constexpr, BLOCK_R: kl.constexpr, BLOCK_I: kl.constexpr):
    """y = index of the max (MIN: min) along the single reduced dim Q2 (Q0 = Q1 = 1)."""
    sxi = unit(sxi, XC)
    sxq2 = unit(sxq2, XR)
    pid = kl.program_id(0)
    o0 = pid // O1
    o1 = pid % O1
    ii = kl.program_id(1) * BLOCK_I + kl.arange(0, BLOCK_I)
    imask = ii < I
    idx = arg_scan(x_ptr + o0 * sxo0 + o1 * sxo1, Q2, sxq2, kept_cols(ii, I, sxi, ROW), imask, MIN, LAST, ACC, WORST,
                   ACC == "fp32" or ACC == "fp64", BLOCK_R, BLOCK_I, ROW)
    kl.store(y_ptr + o0 * syo0 + o1 * syo1 + ii * syi, idx, mask=imask)
