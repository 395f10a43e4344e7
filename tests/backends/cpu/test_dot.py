"""ky.dot on cpu: the register-blocked micro-kernels (backends/cpu/dot.py).

Shapes cover the blocking's edges on every vector path: row tails (M not a multiple of MR), column
panels with fewer vectors, a partial last vector (N not a multiple of the vector length), K = 1
and odd K, 1 x N, M x 1, and 128 x 128 x 128.

Tolerance for float accumulation: the standard bound for a length-K dot product summed in any
order with unit roundoff u, |err| <= gamma_{K+1} * (|C| + |A| @ |B|), gamma_n = n*u / (1 - n*u);
u = 2^-24 for float accumulators (fp32, and fp16/bf16 inputs, which convert exactly to float),
2^-53 for fp64. int8 x int8 -> int32 is exact.
"""

import ml_dtypes
import numpy as np
import pytest

import kaiyuan as ky
from kaiyuan.backends.cpu import toolchain

from ..test_dot import matmul_kernel as kloop_matmul  # the conformance suite's K-loop kernel
from .helpers import Compiled, load, module, offsets2d, ptrs, store

SHAPES = [(16, 16, 16), (1, 1, 1), (1, 7, 64), (64, 9, 1), (5, 3, 7), (6, 1, 64), (13, 17, 100), (8, 33, 48),
          (12, 64, 129), (3, 5, 16), (128, 128, 128)]
TYPES = {  # elem -> (numpy input type, acc elem, numpy acc type, unit roundoff or None if exact)
    "f32": (np.float32, "f32", np.float32, 2.0 ** -24),
    "f16": (np.float16, "f32", np.float32, 2.0 ** -24),
    "bf16": (ml_dtypes.bfloat16, "f32", np.float32, 2.0 ** -24),
    "f64": (np.float64, "f64", np.float64, 2.0 ** -53),
    "i8": (np.int8, "i32", np.int32, None),
}


def dot_ir(elem: str, acc: str, m: int, kk: int, n: int) -> str:
    body = "\n".join([
        offsets2d("ao", m, kk), offsets2d("bo", kk, n), offsets2d("co", m, n),
        ptrs("ap", "a", "ao", f"{m}x{kk}", elem), load("av", "ap", f"{m}x{kk}", elem),
        ptrs("bp", "b", "bo", f"{kk}x{n}", elem), load("bv", "bp", f"{kk}x{n}", elem),
        ptrs("cp", "c", "co", f"{m}x{n}", acc), load("cv", "cp", f"{m}x{n}", acc),
        f'    %d = "ky.dot"(%av, %bv, %cv) : (tensor<{m}x{kk}x{elem}>, tensor<{kk}x{n}x{elem}>, '
        f"tensor<{m}x{n}x{acc}>) -> tensor<{m}x{n}x{acc}>",
        store("cp", "d", f"{m}x{n}", acc),
    ])
    return module(body, f"%a: !ky.ptr<{elem}>, %b: !ky.ptr<{elem}>, %c: !ky.ptr<{acc}>")


def operands(elem: str, m: int, kk: int, n: int, seed: int):
    npt, _, npacc, _ = TYPES[elem]
    rng = np.random.default_rng(seed)
    if elem == "i8":
        return (rng.integers(-128, 128, (m, kk), dtype=np.int8), rng.integers(-128, 128, (kk, n), dtype=np.int8),
                rng.integers(-1000, 1000, (m, n), dtype=np.int32))
    return (rng.standard_normal((m, kk)).astype(npt), rng.standard_normal((kk, n)).astype(npt),
            rng.standard_normal((m, n)).astype(npacc))


def check_dot(k: Compiled, elem: str, m: int, kk: int, n: int, seed: int = 0) -> None:
    a, b, c = operands(elem, m, kk, n, seed)
    u = TYPES[elem][3]
    if u is None:
        ref = c.astype(np.int64) + a.astype(np.int64) @ b.astype(np.int64)
        k((1,), a, b, c)
        np.testing.assert_array_equal(c, ref.astype(np.int32))
        return
    a64, b64, c64 = a.astype(np.float64), b.astype(np.float64), c.astype(np.float64)
    ref = c64 + a64 @ b64
    gamma = (kk + 1) * u / (1 - (kk + 1) * u)
    bound = gamma * (np.abs(c64) + np.abs(a64) @ np.abs(b64))
    k((1,), a, b, c)
    err = np.abs(c.astype(np.float64) - ref)
    assert np.all(err <= bound), f"{elem} {m}x{kk}x{n}: max error {err.max():.3g}, bound {bound.max():.3g}"


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("elem", list(TYPES))
def test_dot_matches_numpy(elem, shape):
    m, kk, n = shape
    k = Compiled(dot_ir(elem, TYPES[elem][1], m, kk, n))
    check_dot(k, elem, m, kk, n, seed=m * 10007 + kk * 101 + n)


def test_dot_f16_accumulator_rounds_once():
    """out_dtype fp16: accumulated in float, rounded to fp16 once at the end."""
    m, kk, n = 8, 40, 24
    k = Compiled(dot_ir("f16", "f16", m, kk, n))
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((m, kk)).astype(np.float16), rng.standard_normal((kk, n)).astype(np.float16)
    c = rng.standard_normal((m, n)).astype(np.float16)
    ref = (c.astype(np.float64) + a.astype(np.float64) @ b.astype(np.float64)).astype(np.float16)
    k((1,), a, b, c)
    np.testing.assert_allclose(c.astype(np.float32), ref.astype(np.float32), rtol=2e-3, atol=2e-3)


def test_dot_i64_accumulator_uses_the_plain_loop():
    m, kk, n = 4, 5, 6
    k = Compiled(dot_ir("i32", "i64", m, kk, n))
    assert "ky_dot_" not in k.asm["c"]
    rng = np.random.default_rng(2)
    a, b = rng.integers(-2**31, 2**31, (m, kk), dtype=np.int32), rng.integers(-2**31, 2**31, (kk, n), dtype=np.int32)
    c = np.zeros((m, n), np.int64)
    k((1,), a, b, c)
    np.testing.assert_array_equal(c, a.astype(np.int64) @ b.astype(np.int64))


def test_emitted_c_has_the_micro_kernel():
    k = Compiled(dot_ir("f32", "f32", 64, 32, 64))
    c = k.asm["c"]
    assert "ky_dot_f32(64, 64, 32," in c
    assert "ky_vf32 acc[KY_MRMAX][KY_NV]" in c and "KY_FMA_f32(a, b[v], acc[i][v])" in c
    assert "#if defined(KY_ISA_GENERIC)" in c and "__AVX512F__" in c and "__ARM_NEON" in c
    assert "ky_dot_f64" not in c                    # only the kinds the kernel uses


def _isa(k: Compiled) -> str:
    import ctypes
    f = k.program.lib.ky_dot_isa
    f.restype = ctypes.c_char_p
    return f().decode()


def test_native_path_follows_the_compiler_target(monkeypatch):
    monkeypatch.delenv("KAIYUAN_CPU_ISA", raising=False)
    isa = set(toolchain.isa_flags(toolchain.find_cc()))
    expected = "avx512" if "avx512f" in isa else "avx2" if {"avx2", "fma"} <= isa else None
    k = Compiled(dot_ir("f32", "f32", 16, 16, 16))
    if expected is not None:
        assert _isa(k) == expected
    else:
        assert _isa(k) in ("neon", "generic")


@pytest.mark.parametrize("forced", ["generic", "avx2"])
@pytest.mark.parametrize("elem", ["f32", "bf16", "f64", "i8"])
def test_forced_narrower_path_matches_numpy(monkeypatch, forced, elem):
    isa = set(toolchain.isa_flags(toolchain.find_cc()))
    if forced == "avx2" and not {"avx2", "fma"} <= isa:
        pytest.skip("the compiler does not target AVX2/FMA here")
    monkeypatch.setenv("KAIYUAN_CPU_ISA", forced)
    for m, kk, n in [(13, 17, 100), (64, 32, 64), (1, 3, 5)]:
        k = Compiled(dot_ir(elem, TYPES[elem][1], m, kk, n))
        assert _isa(k) == forced
        check_dot(k, elem, m, kk, n, seed=m + kk + n)


def test_unknown_isa_is_an_error(monkeypatch):
    monkeypatch.setenv("KAIYUAN_CPU_ISA", "sse9")
    with pytest.raises(ky.KaiyuanError, match="KAIYUAN_CPU_ISA"):
        toolchain.flags()


def _sig():
    sig = {n: "*fp32" for n in ("a_ptr", "b_ptr", "c_ptr")}
    sig.update({n: "i32" for n in ("M", "N", "K", "stride_am", "stride_bk", "stride_cm")})
    return sig


def test_k_loop_accumulates_in_place():
    """`acc = kl.dot(a, b, acc)` in a K loop updates the carried tile in place: no copy per step."""
    c = ky.compile(kloop_matmul, target="cpu", signature=_sig(),
                   constants=dict(BM=64, BN=64, BK=32, stride_ak=1, stride_bn=1, stride_cn=1)).asm["c"]
    program = c[c.index("void ky_program("):c.index("int64_t ky_range(")]
    loop = program[program.index("for (int32_t"):]
    call = next(line.strip() for line in loop.splitlines() if "ky_dot_f32(" in line)
    args = [x.strip() for x in call[call.index("(") + 1:call.rindex(")")].split(",")]
    assert args[:3] == ["64", "64", "32"] and args[-2] == args[-1], call   # Cin is C
    assert "memcpy" not in loop, loop                                     # nothing copied per step


@pytest.mark.parametrize("size,blocks", [((100, 70, 50), (32, 32, 16)), ((64, 128, 96), (64, 64, 32)),
                                         ((33, 17, 129), (16, 64, 64)),
                                         ((300, 260, 130), (256, 256, 64))])   # > STACK_LIMIT: heap tiles
def test_k_loop_matmul_matches_numpy(size, blocks):
    (m, n, kk), (bm, bn, bk) = size, blocks
    rng = np.random.default_rng(m + n + kk)
    a = rng.standard_normal((m, kk)).astype(np.float32)
    b = rng.standard_normal((kk, n)).astype(np.float32)
    c = np.zeros((m, n), np.float32)
    with ky.device("cpu"):
        kloop_matmul[(-(-m // bm), -(-n // bn))](a, b, c, m, n, kk, kk, 1, n, 1, n, 1, BM=bm, BN=bn, BK=bk)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    bound = (kk + 1) * 2.0 ** -24 * 1.01 * (np.abs(a64) @ np.abs(b64))
    assert np.all(np.abs(c - a64 @ b64) <= bound)
