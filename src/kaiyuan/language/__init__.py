"""kaiyuan.language: the tile kernel language, with Triton's names and meaning.

    import kaiyuan as ky
    import kaiyuan.language as kl

    @ky.jit
    def add(x_ptr, y_ptr, out_ptr, n, BLOCK: kl.constexpr):
        offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
        mask = offs < n
        kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=mask) + kl.load(y_ptr + offs, mask=mask), mask=mask)

docs/language.md lists every builtin.
"""

from .builtins import *  # noqa: F401,F403
from .builtins import _BUILTINS
from .core import (  # noqa: F401
    bfloat16,
    constexpr,
    dtype,
    float16,
    float32,
    float64,
    int1,
    int8,
    int16,
    int32,
    int64,
    pointer_type,
    tensor,
    uint8,
    uint16,
    uint32,
    uint64,
)
from . import builtins as _b
from .builtins import abs, max, min, pow, sum  # noqa: F401,A004  (shadow Python's inside kernels)

import types as _types

# Triton spells some element-wise functions tl.math.X; the same builtins, namespaced.
math = _types.SimpleNamespace(**{n: getattr(_b, n) for n in (
    "exp", "exp2", "log", "log2", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "erf",
    "floor", "ceil", "abs", "fma", "pow", "div_rn", "sqrt_rn", "fdiv", "maximum", "minimum")})
__all__ = sorted(set(_BUILTINS) | {
    "constexpr", "tensor", "dtype", "pointer_type", "float16", "bfloat16", "float32", "float64",
    "int1", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "math", "view", "permute", "sqrt_rn", "fdiv", "exp", "exp2", "log", "log2", "log1p", "expm1", "sqrt",
    "rsqrt", "sin", "cos", "tan", "tanh", "erf", "floor", "ceil", "range",
})
view, permute = _b.view, _b.permute
range = _b._range  # noqa: A001  Triton's tl.range (a run-time loop with pipelining hints)
