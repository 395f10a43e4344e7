"""Dot operands read in place (backends/cpu/direct.py): interior tiles skip their copy, edges and
unfit strides fall back to it; rows that are not evenly spaced go through a row-offset table; a
dot without an accumulator starts from zero; a carried tile rescaled before the dot is updated in
its own storage; a loop's initial tile read by nothing else lends the loop its storage. Results are checked against numpy (float32 sums of at most 96 terms: 1e-4)."""

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl

from ..test_dot import matmul_kernel as kloop_matmul


def _program(c: str) -> str:
    return c[c.index("void ky_program("):c.index("int64_t ky_range(")]


def _dot_args(c: str, name: str = "ky_dot_f32(") -> list[str]:
    call = next(line.strip() for line in _program(c).splitlines() if name in line)
    return [x.strip() for x in call[call.index("(") + 1:call.rindex(")")].split(",")]


def _close(x, ref):
    np.testing.assert_allclose(x, ref, rtol=1e-4, atol=1e-4)


def test_k_loop_operands_are_read_in_place():
    sig = {n: "*fp32" for n in ("a_ptr", "b_ptr", "c_ptr")}
    sig.update({n: "i32" for n in ("M", "N", "K", "stride_am", "stride_bk", "stride_cm")})
    c = ky.compile(kloop_matmul, target="cpu", signature=sig,
                   constants=dict(BM=64, BN=64, BK=32, stride_ak=1, stride_bn=1, stride_cn=1)).asm["c"]
    args = _dot_args(c)
    assert args[3].startswith("dp") and args[6].startswith("dp"), args   # pointers, not tile arrays


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("M,N,K", [(64, 64, 96), (50, 70, 40)])   # interior tiles only / with edges
def test_k_loop_matmul_strided_operands(transposed, M, N, K):
    rng = np.random.default_rng(M + K)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    c = np.zeros((M, N), np.float32)
    if transposed:   # A column-major: read in place with a column stride of M; B copied (column stride K)
        src_a, sa = np.asfortranarray(a), (1, M)
        src_b, sb = np.asfortranarray(b), (1, K)
    else:
        src_a, sa, src_b, sb = a, (K, 1), b, (N, 1)
    with ky.device("cpu"):
        kloop_matmul[(-(-M // 32), -(-N // 32))](src_a, src_b, c, M, N, K, *sa, *sb, N, 1, BM=32, BN=32, BK=16)
    _close(c, a.astype(np.float64) @ b.astype(np.float64))


@ky.jit
def gathered_rows_kernel(a_ptr, b_ptr, rows_ptr, c_ptr, N, K, BM: kl.constexpr, BN: kl.constexpr,
                         BK: kl.constexpr):
    rm = kl.arange(0, BM)
    rn = kl.arange(0, BN)
    rk = kl.arange(0, BK)
    acc = kl.zeros((BM, BN), dtype=kl.float32)
    for k in range(0, K, BK):
        rows = kl.load(rows_ptr + k + rk)                  # B's rows in any order: not affine in k
        a = kl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :])
        b = kl.load(b_ptr + rows[:, None] * N + rn[None, :], mask=rn[None, :] < N, other=0.0)
        acc = kl.dot(a, b, acc)
    kl.store(c_ptr + rm[:, None] * N + rn[None, :], acc, mask=rn[None, :] < N)


@pytest.mark.parametrize("N", [32, 20])   # all columns valid (table) / a partial tile (the copy)
def test_rows_through_an_offset_table(N):
    BM, BN, BK, K = 16, 32, 16, 48
    rng = np.random.default_rng(N)
    a = rng.standard_normal((BM, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    rows = rng.permutation(K).astype(np.int32)
    c = np.zeros((BM, N), np.float32)
    with ky.device("cpu"):
        gathered_rows_kernel[(1,)](a, b, rows, c, N, K, BM=BM, BN=BN, BK=BK)
    _close(c, a.astype(np.float64) @ b[rows].astype(np.float64))
    sig = {"a_ptr": "*fp32", "b_ptr": "*fp32", "rows_ptr": "*i32", "c_ptr": "*fp32", "N": "i32", "K": "i32"}
    asm = ky.compile(gathered_rows_kernel, target="cpu", signature=sig, constants=dict(BM=BM, BN=BN, BK=BK)).asm["c"]
    assert "ky_dotr_f32(" in _program(asm)


@ky.jit
def data_masked_kernel(a_ptr, keep_ptr, b_ptr, c_ptr, BM: kl.constexpr, BN: kl.constexpr, BK: kl.constexpr):
    rm = kl.arange(0, BM)
    rn = kl.arange(0, BN)
    rk = kl.arange(0, BK)
    keep = kl.load(keep_ptr + rm) != 0                       # a mask computed from data
    a = kl.load(a_ptr + rm[:, None] * BK + rk[None, :], mask=keep[:, None], other=0.0)
    b = kl.load(b_ptr + rk[:, None] * BN + rn[None, :])
    kl.store(c_ptr + rm[:, None] * BN + rn[None, :], kl.dot(a, b))


@pytest.mark.parametrize("drop", [False, True])
def test_data_dependent_mask(drop):
    BM, BN, BK = 16, 16, 32
    rng = np.random.default_rng(3)
    a = rng.standard_normal((BM, BK)).astype(np.float32)
    b = rng.standard_normal((BK, BN)).astype(np.float32)
    keep = np.ones(BM, np.int32)
    if drop:
        keep[[2, 11]] = 0
    c = np.full((BM, BN), np.nan, np.float32)
    with ky.device("cpu"):
        data_masked_kernel[(1,)](a, keep, b, c, BM=BM, BN=BN, BK=BK)
    _close(c, (a * keep[:, None]).astype(np.float64) @ b.astype(np.float64))


def test_dot_without_accumulator_starts_from_zero():
    sig = {n: "*fp32" for n in ("a_ptr", "keep_ptr", "b_ptr", "c_ptr")}
    sig["keep_ptr"] = "*i32"
    asm = ky.compile(data_masked_kernel, target="cpu", signature=sig, constants=dict(BM=16, BN=16, BK=32)).asm["c"]
    assert _dot_args(asm)[-2] == "0"                          # no zero-filled tile to read


@ky.jit
def decayed_sum_kernel(a_ptr, b_ptr, c_ptr, K, BM: kl.constexpr, BN: kl.constexpr, BK: kl.constexpr):
    rm = kl.arange(0, BM)
    rn = kl.arange(0, BN)
    rk = kl.arange(0, BK)
    acc = kl.zeros((BM, BN), dtype=kl.float32)
    for k in range(0, K, BK):
        a = kl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :])
        b = kl.load(b_ptr + (k + rk)[:, None] * BN + rn[None, :])
        acc = kl.dot(a, b, acc * 0.5)                        # rescaled, then accumulated: in place
    kl.store(c_ptr + rm[:, None] * BN + rn[None, :], acc)


def test_carried_tile_rescaled_in_place():
    BM, BN, BK, K = 16, 16, 16, 64
    rng = np.random.default_rng(5)
    a = rng.standard_normal((BM, K)).astype(np.float32)
    b = rng.standard_normal((K, BN)).astype(np.float32)
    c = np.zeros((BM, BN), np.float32)
    with ky.device("cpu"):
        decayed_sum_kernel[(1,)](a, b, c, K, BM=BM, BN=BN, BK=BK)
    ref = np.zeros((BM, BN))
    for k in range(0, K, BK):
        ref = 0.5 * ref + a[:, k:k + BK].astype(np.float64) @ b[k:k + BK].astype(np.float64)
    _close(c, ref)
    sig = {"a_ptr": "*fp32", "b_ptr": "*fp32", "c_ptr": "*fp32", "K": "i32"}
    asm = ky.compile(decayed_sum_kernel, target="cpu", signature=sig, constants=dict(BM=BM, BN=BN, BK=BK)).asm["c"]
    loop = _program(asm)[_program(asm).index("for (int32_t"):]
    body = loop[:loop.index("ky_dot_f32(")]
    assert "memcpy" not in loop[:loop.index("\n    }\n")], loop                # the yield copies nothing
    # in place in the loop's carried storage (filled with the zero splat before the loop), which
    # the rescale writes once
    assert _dot_args(asm)[-1] == _dot_args(asm)[-2] and body.count(f"{_dot_args(asm)[-1]}[") == 1, body


@ky.jit
def split_k_kernel(a_ptr, b_ptr, c_ptr, K, BM: kl.constexpr, BN: kl.constexpr, BK: kl.constexpr):
    # the K walk of the matrix operators: whole steps, then a masked tail step
    rm = kl.arange(0, BM)
    rn = kl.arange(0, BN)
    rk = kl.arange(0, BK)
    acc = kl.zeros((BM, BN), dtype=kl.float32)
    k_full = (K // BK) * BK
    for k in range(0, k_full, BK):
        a = kl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :])
        acc = kl.dot(a, kl.load(b_ptr + (k + rk)[:, None] * BN + rn[None, :]), acc)
    for k in range(k_full, K, BK):
        a = kl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :], mask=(k + rk)[None, :] < K, other=0.0)
        b = kl.load(b_ptr + (k + rk)[:, None] * BN + rn[None, :], mask=(k + rk)[:, None] < K, other=0.0)
        acc = kl.dot(a, b, acc)
    kl.store(c_ptr + rm[:, None] * BN + rn[None, :], acc)


def test_loop_inits_lend_their_storage():
    """The zeroed accumulator becomes the first loop's carried tile and that loop's result the
    second's: nothing is copied into either loop (each copy was a memcpy of the whole tile)."""
    BM, BN, BK, K = 16, 16, 16, 40
    rng = np.random.default_rng(7)
    a = rng.standard_normal((BM, K)).astype(np.float32)
    b = rng.standard_normal((K, BN)).astype(np.float32)
    c = np.zeros((BM, BN), np.float32)
    with ky.device("cpu"):
        split_k_kernel[(1,)](a, b, c, K, BM=BM, BN=BN, BK=BK)
    _close(c, a.astype(np.float64) @ b.astype(np.float64))
    sig = {"a_ptr": "*fp32", "b_ptr": "*fp32", "c_ptr": "*fp32", "K": "i32"}
    asm = ky.compile(split_k_kernel, target="cpu", signature=sig, constants=dict(BM=BM, BN=BN, BK=BK)).asm["c"]
    prog = _program(asm)
    assert "memcpy(" not in prog, prog
    dots = [line.strip() for line in prog.splitlines() if "ky_dot_f32(" in line]
    assert len(dots) == 2 and len({d.split(",")[-1] for d in dots}) == 1, dots   # one storage throughout


@ky.jit
def row_loop_kernel(a_ptr, b_ptr, d_ptr, c_ptr, K, R, TOTAL: kl.constexpr, BM: kl.constexpr, BN: kl.constexpr,
                    BK: kl.constexpr):
    # a K walk inside a loop over R row blocks A_r of A, from a loaded tile D. TOTAL: C = D + the
    # sum of A_r @ B, each walk starting from the outer loop's carried tile; else C_r = D + A_r @ B,
    # each walk starting from the one D loaded outside the row loop
    rm = kl.arange(0, BM)
    rn = kl.arange(0, BN)
    rk = kl.arange(0, BK)
    start = kl.load(d_ptr + rm[:, None] * BN + rn[None, :])
    if TOTAL:
        acc = start
    for r in range(0, R):
        if not TOTAL:
            acc = start
        for k in range(0, K, BK):
            a = kl.load(a_ptr + (r * BM + rm)[:, None] * K + (k + rk)[None, :])
            acc = kl.dot(a, kl.load(b_ptr + (k + rk)[:, None] * BN + rn[None, :]), acc)
        if not TOTAL:
            kl.store(c_ptr + (r * BM + rm)[:, None] * BN + rn[None, :], acc)
    if TOTAL:
        kl.store(c_ptr + rm[:, None] * BN + rn[None, :], acc)


@pytest.mark.parametrize("total", [False, True])
def test_nested_loops_lend_only_what_is_theirs(total):
    """TOTAL: the inner walk's initial tile is the outer loop's carried one, read by nothing else;
    the inner loop carries it in the outer loop's storage, and neither loop copies. Otherwise D,
    loaded outside the row loop, starts the inner loop of every outer iteration and must not be
    lent: lent, the second row block would start from the first one's sums."""
    BM, BN, BK, K, R = 16, 16, 16, 32, 3
    rng = np.random.default_rng(8)
    a = rng.standard_normal((R * BM, K)).astype(np.float32)
    b = rng.standard_normal((K, BN)).astype(np.float32)
    d = rng.standard_normal((BM, BN)).astype(np.float32)
    c = np.zeros((BM if total else R * BM, BN), np.float32)
    with ky.device("cpu"):
        row_loop_kernel[(1,)](a, b, d, c, K, R, TOTAL=total, BM=BM, BN=BN, BK=BK)
    a64, b64, d64 = a.astype(np.float64), b.astype(np.float64), d.astype(np.float64)
    ref = d64 + a64.reshape(R, BM, K).sum(0) @ b64 if total else np.tile(d64, (R, 1)) + a64 @ b64
    _close(c, ref)
    if total:
        sig = {"a_ptr": "*fp32", "b_ptr": "*fp32", "d_ptr": "*fp32", "c_ptr": "*fp32", "K": "i32", "R": "i32"}
        consts = dict(TOTAL=True, BM=BM, BN=BN, BK=BK)
        prog = _program(ky.compile(row_loop_kernel, target="cpu", signature=sig, constants=consts).asm["c"])
        assert "memcpy(" not in prog, prog
