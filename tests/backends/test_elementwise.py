"""Element-wise arithmetic, type promotion, comparisons/where and casts, on every device.

Each kernel processes a 1-D array in blocks of BLOCK with a masked tail; the output array is
longer than n and pre-filled with a sentinel, so a store that ignores its mask is caught.
Tolerances: tests/backends/_support.py.
"""

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl

from ._support import ALL, FLOATS, INTS, NP, assert_close, c_div, c_rem, cdiv, rand

BLOCK = 64
PAD = 16


@ky.jit
def binary_kernel(x_ptr, y_ptr, out_ptr, n, OP: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    y = kl.load(y_ptr + offs, mask=mask, other=1)
    if OP == "add":
        z = x + y
    elif OP == "sub":
        z = x - y
    elif OP == "mul":
        z = x * y
    elif OP == "truediv":
        z = x / y
    elif OP == "floordiv":
        z = x // y
    elif OP == "mod":
        z = x % y
    elif OP == "and":
        z = x & y
    elif OP == "or":
        z = x | y
    elif OP == "xor":
        z = x ^ y
    elif OP == "neg":
        z = -x
    elif OP == "invert":
        z = ~x
    elif OP == "shl":
        z = x << y
    elif OP == "shr":
        z = x >> y
    else:
        kl.static_assert(False, "unknown OP")
    kl.store(out_ptr + offs, z, mask=mask)


def _launch_binary(op, x, y, out_dtype):
    n = x.size
    sentinel = np.array(7).astype(out_dtype)
    out = np.full(n + PAD, sentinel, out_dtype)
    binary_kernel[(cdiv(n, BLOCK),)](x, y, out, n, OP=op, BLOCK=BLOCK)
    assert (out[n:] == sentinel).all(), "masked-off lanes were stored"
    return out[:n]


@ky.jit
def all_ops_kernel(x_ptr, y_ptr, out_ptr, n, KIND: kl.constexpr, BLOCK: kl.constexpr):
    """Every operator of KIND ("fp", "int" or "bool") on x and y; result i goes to out[i*n:(i+1)*n]."""
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    y = kl.load(y_ptr + offs, mask=mask, other=1)
    if KIND == "bool":
        kl.store(out_ptr + offs, x & y, mask=mask)
        kl.store(out_ptr + n + offs, x | y, mask=mask)
        kl.store(out_ptr + 2 * n + offs, x ^ y, mask=mask)
    else:
        kl.store(out_ptr + offs, x + y, mask=mask)
        kl.store(out_ptr + n + offs, x - y, mask=mask)
        kl.store(out_ptr + 2 * n + offs, x * y, mask=mask)
        kl.store(out_ptr + 3 * n + offs, -x, mask=mask)
        if KIND == "fp":
            kl.store(out_ptr + 4 * n + offs, x / y, mask=mask)
            kl.store(out_ptr + 5 * n + offs, x % y, mask=mask)
        else:
            kl.store(out_ptr + 4 * n + offs, x // y, mask=mask)
            kl.store(out_ptr + 5 * n + offs, x % y, mask=mask)
            kl.store(out_ptr + 6 * n + offs, x & y, mask=mask)
            kl.store(out_ptr + 7 * n + offs, x | y, mask=mask)
            kl.store(out_ptr + 8 * n + offs, x ^ y, mask=mask)
            kl.store(out_ptr + 9 * n + offs, ~x, mask=mask)


ARITH = {
    "fp": ["add", "sub", "mul", "neg", "truediv", "mod"],
    "int": ["add", "sub", "mul", "neg", "floordiv", "mod", "and", "or", "xor", "invert"],
    "bool": ["and", "or", "xor"],
}


def _reference(op, x, y):
    with np.errstate(all="ignore"):
        if op == "add":
            return x + y
        if op == "sub":
            return x - y
        if op == "mul":
            return x * y
        if op == "truediv":
            return x / y
        if op == "floordiv":
            return c_div(x, y) if x.dtype.kind == "i" else x // y
        if op == "mod":
            if x.dtype.kind == "i":
                return c_rem(x, y)
            if x.dtype.kind == "u":
                return x % y
            # floats: C fmod (sign of the dividend) as Triton's % and the IR's arith.remf, not Python's %;
            # fmod is exact, so computing it in fp64 and rounding gives the exact result
            return np.fmod(x.astype(np.float64), y.astype(np.float64)).astype(x.dtype)
        if op == "and":
            return x & y
        if op == "or":
            return x | y
        if op == "xor":
            return x ^ y
        if op == "neg":
            return -x if x.dtype.kind != "u" else (0 - x.astype(np.int64)).astype(x.dtype)
        if op == "invert":
            return ~x
    raise AssertionError(op)


@pytest.mark.parametrize("name", ALL)
def test_arithmetic_matches_numpy(device, name):
    rng = np.random.default_rng(sum(map(ord, name)))
    n = 203  # three blocks of 64 and a ragged tail of 11
    x = rand(rng, n, name)
    y = rand(rng, n, name)
    if name in INTS:
        y[y == 0] = 3  # integer division by zero is undefined
    kind = "fp" if name in FLOATS else "bool" if name == "i1" else "int"
    ops = ARITH[kind]
    sentinel = np.array(7).astype(NP[name])
    out = np.full(len(ops) * n + PAD, sentinel, NP[name])
    all_ops_kernel[(cdiv(n, BLOCK),)](x, y, out, n, KIND=kind, BLOCK=BLOCK)
    for i, op in enumerate(ops):
        assert_close(out[i * n:(i + 1) * n], _reference(op, x, y), name, err_msg=f"{name} {op}")
    assert (out[len(ops) * n:] == sentinel).all(), "masked-off lanes were stored"


@pytest.mark.parametrize("name", ["fp32", "i32", "fp16"])
def test_single_element_and_masked_tail(device, name):
    # n == 1 is specialised as a compile-time constant; the other 63 lanes must not be stored
    x, y = np.array([3], NP[name]), np.array([2], NP[name])
    assert_close(_launch_binary("mul", x, y, NP[name]), np.array([6], NP[name]), name)


@pytest.mark.parametrize("name", ["i8", "i32", "i64", "u8"])
def test_shifts(device, name):
    rng = np.random.default_rng(1)
    bits = NP[name].itemsize * 8
    x = rand(rng, 100, name)
    s = rng.integers(0, bits, 100).astype(NP[name])
    assert_close(_launch_binary("shl", x, s, NP[name]), x << s, name)
    # >> is arithmetic for signed types and logical for unsigned ones (as in C and Triton)
    assert_close(_launch_binary("shr", x, s, NP[name]), x >> s, name)


def test_integer_overflow_wraps(device):
    x = np.array([127, -128, 100, -100], np.int8)
    y = np.array([1, -1, 100, 100], np.int8)
    np.testing.assert_array_equal(_launch_binary("add", x, y, np.int8), np.array([-128, 127, -56, 0], np.int8))
    np.testing.assert_array_equal(_launch_binary("mul", x, y, np.int8), (x.astype(np.int32) * y).astype(np.int8))
    u = np.array([250, 3, 0], np.uint8)
    v = np.array([10, 5, 1], np.uint8)
    np.testing.assert_array_equal(_launch_binary("add", u, v, np.uint8), np.array([4, 8, 1], np.uint8))
    np.testing.assert_array_equal(_launch_binary("sub", u, v, np.uint8), np.array([240, 254, 255], np.uint8))


def test_signed_division_truncates_toward_zero(device):
    x = np.array([7, -7, 7, -7, 0, -1], np.int32)
    y = np.array([2, 2, -2, -2, 5, 3], np.int32)
    np.testing.assert_array_equal(_launch_binary("floordiv", x, y, np.int32), [3, -3, -3, 3, 0, 0])
    np.testing.assert_array_equal(_launch_binary("mod", x, y, np.int32), [1, -1, 1, -1, 0, -1])


def test_unsigned_division_is_unsigned(device):
    x = np.array([200, 255, 129], np.uint8)
    y = np.array([3, 16, 2], np.uint8)
    np.testing.assert_array_equal(_launch_binary("floordiv", x, y, np.uint8), [66, 15, 64])
    np.testing.assert_array_equal(_launch_binary("mod", x, y, np.uint8), [2, 15, 1])


def test_float_special_values(device):
    x = np.array([1.0, -1.0, 0.0, np.inf, np.nan, 3.0], np.float32)
    y = np.array([0.0, 0.0, 0.0, np.inf, 1.0, np.inf], np.float32)
    with np.errstate(all="ignore"):
        assert_close(_launch_binary("truediv", x, y, np.float32), x / y, "fp32")
        assert_close(_launch_binary("sub", x, y, np.float32), x - y, "fp32")


def test_fp16_and_bf16_round_each_operation(device):
    # 1 + 2**-12 is not representable in fp16 (11-bit significand): the sum must round to 1.
    x = np.array([1.0, 1.0, 2048.0], np.float16)
    y = np.array([2.0**-12, 2.0**-10, 1.0], np.float16)
    np.testing.assert_array_equal(_launch_binary("add", x, y, np.float16), (x + y))
    bf = NP["bf16"]
    a = np.array([1.0, 256.0], bf)
    b = np.array([2.0**-9, 1.0], bf)
    np.testing.assert_array_equal(_launch_binary("add", a, b, bf).astype(np.float32), np.array([1.0, 256.0], np.float32))


# ------------------------------------------------------------------------------- type promotion


@ky.jit
def promote_kernel(x_ptr, y_ptr, out_ptr, n, EXPECT: kl.constexpr, SCALAR: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    if SCALAR is None:
        z = x + kl.load(y_ptr + offs, mask=mask, other=0)
    else:
        z = x * SCALAR
    kl.static_assert(z.dtype == EXPECT, "unexpected promoted dtype")
    kl.store(out_ptr + offs, z, mask=mask)


PROMOTIONS = [
    ("i32", "fp32", "fp32"),
    ("fp32", "i32", "fp32"),
    ("i8", "i32", "i32"),
    ("i32", "i64", "i64"),
    ("u8", "i32", "i32"),
    ("i8", "u8", "u8"),  # same width: unsigned wins
    ("fp16", "fp32", "fp32"),
    ("fp16", "bf16", "fp32"),
    ("fp32", "fp64", "fp64"),
    ("u8", "u8", "u8"),
    ("i16", "fp16", "fp16"),
]


@pytest.mark.parametrize("a,b,expect", PROMOTIONS)
def test_type_promotion(device, a, b, expect):
    rng = np.random.default_rng(2)
    x = rand(rng, 70, a, low=0 if a == "u8" else -50, high=100)
    y = rand(rng, 70, b, low=0 if b == "u8" else -50, high=100)
    out = np.zeros(70, NP[expect])
    promote_kernel[(cdiv(70, BLOCK),)](x, y, out, 70, EXPECT=getattr(kl, {"fp16": "float16", "bf16": "bfloat16",
                                                                              "fp32": "float32", "fp64": "float64",
                                                                              "i8": "int8", "i32": "int32",
                                                                              "i64": "int64", "u8": "uint8",
                                                                              "i16": "int16"}[expect]),
                                       SCALAR=None, BLOCK=BLOCK)
    with np.errstate(all="ignore"):
        ref = x.astype(NP[expect]) + y.astype(NP[expect])
    assert_close(out, ref, expect)


@pytest.mark.parametrize("name,scalar,expect", [
    ("fp16", 0.5, kl.float16),  # a Python float adopts the tile's float type
    ("bf16", 3.0, kl.bfloat16),
    ("u8", 3, kl.uint8),  # a Python int adopts the tile's integer type (and wraps)
    ("i8", 2, kl.int8),
    ("i32", 1.5, kl.float32),  # int tile * Python float → fp32
])
def test_python_scalars_are_weakly_typed(device, name, scalar, expect):
    rng = np.random.default_rng(3)
    x = rand(rng, 50, name)
    out = np.zeros(50, expect.np)
    promote_kernel[(1,)](x, x, out, 50, EXPECT=expect, SCALAR=scalar, BLOCK=BLOCK)
    with np.errstate(all="ignore"):
        ref = (x.astype(np.float64) * scalar).astype(expect.np) if expect.is_floating else (x * NP[name].type(scalar))
    assert_close(out, ref, expect.name)


# ------------------------------------------------------------------------ comparisons and where


@ky.jit
def compare_kernel(x_ptr, y_ptr, out_ptr, sel_ptr, n, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    y = kl.load(y_ptr + offs, mask=mask)
    kl.store(out_ptr + 0 * n + offs, x < y, mask=mask)
    kl.store(out_ptr + 1 * n + offs, x <= y, mask=mask)
    kl.store(out_ptr + 2 * n + offs, x > y, mask=mask)
    kl.store(out_ptr + 3 * n + offs, x >= y, mask=mask)
    kl.store(out_ptr + 4 * n + offs, x == y, mask=mask)
    kl.store(out_ptr + 5 * n + offs, x != y, mask=mask)
    kl.store(sel_ptr + offs, kl.where(x < y, x, y), mask=mask)


@pytest.mark.parametrize("name", ALL)
def test_comparisons_and_where(device, name):
    rng = np.random.default_rng(4)
    n = 131
    x = rand(rng, n, name, low=-3, high=3)
    y = rand(rng, n, name, low=-3, high=3)
    y[::5] = x[::5]  # some equal pairs
    if name in FLOATS and name != "bf16":
        x[7], y[8] = np.nan, np.nan  # every ordered comparison with NaN is false; != is true
    out = np.zeros(6 * n, np.bool_)
    sel = np.zeros(n, NP[name])
    compare_kernel[(cdiv(n, BLOCK),)](x, y, out, sel, n, BLOCK=BLOCK)
    refs = [x < y, x <= y, x > y, x >= y, x == y, x != y]
    for i, ref in enumerate(refs):
        np.testing.assert_array_equal(out[i * n:(i + 1) * n], ref, err_msg=f"comparison {i}")
    assert_close(sel, np.where(x < y, x, y), name)


def test_unsigned_comparison(device):
    x = np.array([200, 1, 128], np.uint8)
    y = np.array([100, 255, 127], np.uint8)
    out = np.zeros(6 * 3, np.bool_)
    compare_kernel[(1,)](x, y, out, np.zeros(3, np.uint8), 3, BLOCK=BLOCK)
    np.testing.assert_array_equal(out[:3], [False, True, False])  # unsigned, not signed, order


@ky.jit
def where_scalar_kernel(x_ptr, out_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    kl.store(out_ptr + offs, kl.where(x > 0, x, 0.0), mask=mask)  # ReLU with a Python scalar branch


def test_where_with_scalar_branch(device):
    x = np.linspace(-2, 2, 33).astype(np.float32)
    out = np.zeros_like(x)
    where_scalar_kernel[(1,)](x, out, 33, BLOCK=64)
    np.testing.assert_array_equal(out, np.maximum(x, 0))


# ---------------------------------------------------------------------------------------- casts


@ky.jit
def cast_kernel(x_ptr, out_ptr, n, DST: kl.constexpr, BITCAST: kl.constexpr, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    mask = offs < n
    x = kl.load(x_ptr + offs, mask=mask)
    y = x.to(DST, bitcast=BITCAST)
    kl.static_assert(y.dtype == DST)
    kl.store(out_ptr + offs, y, mask=mask)


CASTS = [
    ("fp32", "fp16"), ("fp32", "bf16"), ("fp16", "fp32"), ("bf16", "fp32"), ("fp16", "bf16"), ("bf16", "fp16"),
    ("fp32", "fp64"), ("fp64", "fp32"), ("fp32", "i32"), ("fp32", "i8"), ("fp64", "i64"), ("fp16", "i16"),
    ("fp32", "u8"), ("i32", "fp32"), ("i8", "fp16"), ("u8", "fp32"), ("i64", "fp64"), ("i32", "i8"),
    ("i8", "i32"), ("u8", "i32"), ("i32", "u8"), ("i64", "i32"), ("i16", "i64"), ("fp32", "i1"),
    ("i32", "i1"), ("i1", "fp32"), ("i1", "i32"),
]
_KL = {"fp16": kl.float16, "bf16": kl.bfloat16, "fp32": kl.float32, "fp64": kl.float64, "i1": kl.int1,
       "i8": kl.int8, "i16": kl.int16, "i32": kl.int32, "i64": kl.int64, "u8": kl.uint8}


@pytest.mark.parametrize("src,dst", CASTS)
def test_cast(device, src, dst):
    rng = np.random.default_rng(5)
    n = 77
    if src in FLOATS and dst in INTS:
        lo, hi = (0.0, 250.0) if dst == "u8" else (-100.0, 100.0)  # in range: out-of-range is undefined
        x = rand(rng, n, src, lo, hi)
        x[:4] = np.array([0.0, -0.7, 2.5, 99.9 if dst != "u8" else 3.9]).astype(NP[src])  # truncation toward zero
    else:
        x = rand(rng, n, src)
    if src in FLOATS and dst == "i1":
        x[::3] = 0
    out = np.zeros(n, NP[dst])
    cast_kernel[(cdiv(n, BLOCK),)](x, out, n, DST=_KL[dst], BITCAST=False, BLOCK=BLOCK)
    if dst == "i1":
        ref = x != 0
    elif src in FLOATS and dst in INTS:
        ref = np.trunc(x.astype(np.float64)).astype(NP[dst])
    elif src in FLOATS and dst in FLOATS:
        ref = x.astype(NP[dst])  # round to nearest even (ml_dtypes and numpy do)
    else:
        ref = x.astype(NP[dst])  # int → int wraps / extends by the source's signedness
    if dst in FLOATS:
        np.testing.assert_array_equal(out.astype(np.float64), ref.astype(np.float64), err_msg=f"{src}->{dst}")
    else:
        np.testing.assert_array_equal(out, ref, err_msg=f"{src}->{dst}")


def test_round_to_nearest_even(device):
    # fp32 values exactly halfway between two fp16 values round to the even one
    x = np.array([1 + 2.0**-11, 1 + 3 * 2.0**-11, 2049.0, 2051.0], np.float32)
    out = np.zeros(4, np.float16)
    cast_kernel[(1,)](x, out, 4, DST=kl.float16, BITCAST=False, BLOCK=BLOCK)
    np.testing.assert_array_equal(out, np.array([1.0, 1 + 2 * 2.0**-10, 2048.0, 2052.0], np.float16))


@pytest.mark.parametrize("src,dst", [("fp32", "i32"), ("i32", "fp32"), ("fp16", "i16"), ("fp64", "i64")])
def test_bitcast(device, src, dst):
    rng = np.random.default_rng(6)
    x = rand(rng, 40, src)
    out = np.zeros(40, NP[dst])
    cast_kernel[(1,)](x, out, 40, DST=_KL[dst], BITCAST=True, BLOCK=BLOCK)
    np.testing.assert_array_equal(out, x.view(NP[dst]))
