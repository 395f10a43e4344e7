"""Element-wise functions the generated kernels call (each `@jit`, so it is inlined where called).

These are the parts of ONNX's element-wise semantics that the kernel language has no single
builtin for: integer division and remainder without the hardware trap (x / 0 and MIN / -1 give
numpy's results, not SIGFPE), integer powers, round-half-to-even, shifts past the bit width, and
the inverse trigonometric / hyperbolic functions. The transcendental ones take and return fp64:
the generated code widens fp16/bf16/fp32 inputs to fp64 for them, so one accurate formula serves
every float type (the extra cost is small next to a memory-bound kernel's loads).
"""

from __future__ import annotations

import kaiyuan.language as kl

from ..compiler import jit

HALF_PI = 1.5707963267948966
LN2 = 0.6931471805599453
HUGE = 1e150  # beyond this, x*x overflows fp64: asinh/acosh use log(2x)


# ------------------------------------------------------------------------- integer arithmetic


@jit
def sdiv(a, b):
    """Signed a / b truncated toward zero (ONNX Div); a / 0 is 0 and MIN / -1 wraps to MIN."""
    minus_one = b == -1
    q = a // kl.where((b == 0) | minus_one, 1, b)
    q = kl.where(minus_one, 0 - a, q)
    return kl.where(b == 0, 0, q)


@jit
def udiv(a, b):
    """Unsigned a / b; a / 0 is 0."""
    q = a // kl.where(b == 0, 1, b)
    return kl.where(b == 0, 0, q)


@jit
def srem(a, b):
    """Signed C remainder (sign of a, numpy's fmod); a % 0 is 0, a % -1 is 0 without the trap."""
    return a % kl.where((b == 0) | (b == -1), 1, b)


@jit
def urem(a, b):
    """Unsigned remainder; a % 0 is 0."""
    return a % kl.where(b == 0, 1, b)


@jit
def smod(a, b):
    """Signed remainder with the sign of b (Python's and numpy's mod; ONNX Mod with fmod=0)."""
    r = srem(a, b)
    return kl.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)


@jit
def fmod_floor(a, b):
    """Float remainder with the sign of b (numpy.mod): C fmod, shifted by b when signs differ."""
    r = a % b
    return kl.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)


@jit
def ipow(a, b, BITS: kl.constexpr, SIGNED_A: kl.constexpr, SIGNED_B: kl.constexpr):
    """a ** b for integers, wrapping in a's type (numpy's result), by squaring over b's BITS bits.
    A negative b gives the truncated quotient 1 / a**|b| (0 unless a is 1 or -1)."""
    one = a * 0 + 1
    result = one
    base = a
    e = b
    for _ in kl.static_range(BITS):
        result = kl.where((e & 1) != 0, result * base, result)
        base = base * base
        e = e >> 1
    if SIGNED_B:
        if SIGNED_A:
            odd = (b & 1) != 0
            neg = kl.where(a == 1, one, kl.where(a == -1, kl.where(odd, 0 - one, one), 0))
        else:
            neg = kl.where(a == 1, one, 0)
        result = kl.where(b < 0, neg, result)
    return result


@jit
def shl(a, b, BITS: kl.constexpr):
    """a << b; shifts outside [0, BITS) give 0 (C leaves them undefined)."""
    ok = (b >= 0) & (b < BITS)
    return kl.where(ok, a << kl.where(ok, b, 0), 0)


@jit
def shr(a, b, BITS: kl.constexpr, SIGNED: kl.constexpr):
    """a >> b (arithmetic on signed types); shifts outside [0, BITS) give the sign fill."""
    ok = (b >= 0) & (b < BITS)
    y = a >> kl.where(ok, b, 0)
    if SIGNED:
        fill = a >> (BITS - 1)
    else:
        fill = a * 0
    return kl.where(ok, y, fill)


# ------------------------------------------------------------------------------ float helpers


@jit
def round_even(x):
    """Round half to even (ONNX Round, numpy.round). x - floor(x) is exact for |x| >= 1; below
    that an inexact difference can only move a value onto .5 from the side that rounds the same."""
    r = kl.floor(x)
    d = x - r
    odd = (r - 2.0 * kl.floor(r * 0.5)) != 0.0
    y = kl.where((d > 0.5) | ((d == 0.5) & odd), r + 1.0, r)
    return kl.where(y == 0.0, x * 0.0, y)  # keep the sign of zero: round(-0.3) is -0.0


@jit
def sign(x):
    """-1, 0 or 1 in x's type (NaN stays NaN)."""
    return kl.where(x > 0, 1, kl.where(x < 0, -1, x))


@jit
def softplus(x):
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))."""
    return kl.maximum(x, 0.0) + kl.log1p(kl.exp(-kl.abs(x)))


# ------------------------------------------------------------ fp64 trigonometric / hyperbolic


@jit
def atan64(x):
    """atan on fp64: reduce |x| to [0, 1] (atan t = pi/2 - atan 1/t), halve the angle twice
    (atan t = 2 atan(t / (1 + sqrt(1 + t^2)))) to reach [0, tan(pi/16)], then 12 terms of the
    Taylor series sum (-1)^k z^k / (2k + 1), z = t^2: the first omitted term is below 1e-18."""
    a = kl.abs(x)
    inv = a > 1.0
    t = kl.where(inv, 1.0 / a, a)
    t = t / (1.0 + kl.sqrt(1.0 + t * t))
    t = t / (1.0 + kl.sqrt(1.0 + t * t))
    z = t * t
    p = 1.0 / 21.0 - z * (1.0 / 23.0)
    p = z * p - 1.0 / 19.0
    p = z * p + 1.0 / 17.0
    p = z * p - 1.0 / 15.0
    p = z * p + 1.0 / 13.0
    p = z * p - 1.0 / 11.0
    p = z * p + 1.0 / 9.0
    p = z * p - 1.0 / 7.0
    p = z * p + 1.0 / 5.0
    p = z * p - 1.0 / 3.0
    p = z * p + 1.0
    r = 4.0 * t * p
    r = kl.where(inv, HALF_PI - r, r)
    return kl.where(x < 0.0, -r, r)


@jit
def asin64(x):
    """asin x = atan(x / sqrt(1 - x^2)), with (1 - x)(1 + x) to keep precision near |x| = 1."""
    return atan64(x / kl.sqrt((1.0 - x) * (1.0 + x)))


@jit
def acos64(x):
    """acos x = 2 atan(sqrt((1 - x) / (1 + x))): accurate near both ends (x = -1 gives pi)."""
    return 2.0 * atan64(kl.sqrt((1.0 - x) / (1.0 + x)))


@jit
def sinh64(x):
    """(e^x - e^-x) / 2 through expm1, so small x keeps its precision."""
    return 0.5 * (kl.expm1(x) - kl.expm1(-x))


@jit
def cosh64(x):
    return 0.5 * (kl.exp(x) + kl.exp(-x))


@jit
def asinh64(x):
    """sign(x) log1p(a + a^2 / (1 + sqrt(1 + a^2))), a = |x| (exact near 0); log(2a) when a^2
    would overflow."""
    a = kl.abs(x)
    r = kl.log1p(a + a * a / (1.0 + kl.sqrt(1.0 + a * a)))
    r = kl.where(a > HUGE, kl.log(a) + LN2, r)
    return kl.where(x < 0.0, -r, r)


@jit
def acosh64(x):
    """log1p((x - 1) + sqrt((x - 1)(x + 1))): exact near 1; log(2x) for huge x; NaN below 1."""
    r = kl.log1p((x - 1.0) + kl.sqrt((x - 1.0) * (x + 1.0)))
    r = kl.where(x > HUGE, kl.log(x) + LN2, r)
    return kl.where(x < 1.0, kl.sqrt(x - 1.0), r)  # NaN: (x-1)(x+1) is positive again below -1


@jit
def atanh64(x):
    """0.5 log1p(2x / (1 - x)): exact near 0, +-inf at +-1, NaN outside [-1, 1]."""
    return 0.5 * kl.log1p(2.0 * x / (1.0 - x))
