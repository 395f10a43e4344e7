"""ONNX Trilu (opset 14): the upper (upper=1, default) or lower triangle of the last two dims.

Definition
    y[..., i, j] = x[..., i, j] where j - i >= k (upper) or j - i <= k (lower), else 0; k is the
    optional constant input (default 0). Every dtype: zero bits are zero in all of them.
Kernel
    `trilu_kernel`: R x C tiles over (batch * rows, cols); the dropped elements are masked off the
    load (so they read as 0). Batch dims that do not fold into one stride are copied first.
"""

from __future__ import annotations

from math import prod

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.errors import ArgumentError
from ._common import collapse
from .mv_base import ALL_DTYPES, begin, check_dtype, dense_operand, ints, same_type
from .mv_copy import bits, operand, tile
from .schema import OpDef, register


@jit(do_not_specialize=("n_rows", "N", "M", "k", "sb", "sn", "sm"))
def trilu_kernel(x_ptr, y_ptr, n_rows, N, M, k, sb, sn, sm,
                 UPPER: kl.constexpr, R: kl.constexpr, C: kl.constexpr):
    rows = kl.program_id(0) * R + kl.arange(0, R)
    cols = kl.program_id(1) * C + kl.arange(0, C)
    b = rows // N
    i = rows % N
    diag = cols[None, :] - i[:, None]
    if UPPER:
        keep = diag >= k
    else:
        keep = diag <= k
    mask = (rows < n_rows)[:, None] & (cols < M)[None, :]
    v = kl.load(x_ptr + (b * sb + i * sn)[:, None] + cols[None, :] * sm, mask=mask & keep)
    kl.store(y_ptr + rows[:, None] * M + cols[None, :], v, mask=mask)


def _infer(types, attrs, consts):
    x = types[0]
    check_dtype("Trilu", x)
    if x.rank < 2:
        raise ArgumentError(f"Trilu: input must have at least 2 dims, got {x.shape}")
    if len(consts) > 1:
        ints("Trilu", consts, 1, "k", required=False)
    return [same_type(x, x.shape)]


def _run(inputs, attrs, consts, outputs):
    ctx = begin("Trilu", inputs[:1], outputs)
    x, y = operand(ctx, inputs[0], "input"), operand(ctx, outputs[0], "output")
    if prod(x.shape) == 0:
        return
    k = (ints("Trilu", consts, 1, "k", required=False) or [0])[0] if len(consts) > 1 else 0
    n, m = x.shape[-2:]
    k = max(-n - 1, min(m + 1, k))  # beyond the matrix every k means the same: keep 32-bit
    bshape, (bst,) = collapse(x.shape[:-2], x.strides[:-2])
    if len(bshape) > 1:
        x = dense_operand(ctx, x)
        bshape, (bst,) = collapse(x.shape[:-2], x.strides[:-2])
    rows = prod(x.shape[:-1])
    r, c = tile(ctx, rows, m)
    trilu_kernel[(-(-rows // r), -(-m // c))](bits(x.obj), y.obj, rows, n, m, k, bst[0], *x.strides[-2:],
                                              UPPER=int(attrs["upper"]) == 1, R=r, C=c)


register(OpDef("Trilu", _infer, _run, since=14, inputs=(1, 2), attrs={"upper": 1}, dtypes=ALL_DTYPES,
               value_inputs=(1,), doc="upper (default 1), k (optional constant)"))
