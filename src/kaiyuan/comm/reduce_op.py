"""ReduceOp and the one way kaiyuan.comm combines two contributions.

Every algorithm folds contributions with `combine(acc, x)` in the same, fixed order (rank order;
docs/comm.md, "Reduction order"), so results are bitwise identical whatever algorithm runs.
`combine` is elementwise and commutative (IEEE add/multiply/max/min are), so folding a prefix
into a rank's own data (`acc` = own, `x` = prefix) gives the same bits as prefix ⊕ own.
"""

from __future__ import annotations

import enum

import numpy as np

from ..runtime.errors import UnsupportedError


class ReduceOp(enum.IntEnum):
    """torch.distributed.ReduceOp's names. AVG is SUM divided by the group size at the end."""

    SUM = 0
    PROD = 1
    MIN = 2
    MAX = 3
    AVG = 4


_UFUNC = {ReduceOp.SUM: np.add, ReduceOp.AVG: np.add, ReduceOp.PROD: np.multiply,
          ReduceOp.MIN: np.minimum, ReduceOp.MAX: np.maximum}


def as_op(op) -> ReduceOp:
    if isinstance(op, ReduceOp):
        return op
    if isinstance(op, str) and op.upper() in ReduceOp.__members__:
        return ReduceOp[op.upper()]
    try:
        return ReduceOp(int(op))
    except (TypeError, ValueError):
        raise UnsupportedError(f"unknown reduce op {op!r}",
                               hint="use ReduceOp.SUM, PROD, MIN, MAX or AVG") from None


def check_dtype(op: ReduceOp, dtype: np.dtype) -> None:
    if op is ReduceOp.AVG and dtype == np.bool_:
        raise UnsupportedError("ReduceOp.AVG of a bool tensor", hint="use SUM (logical or) or MIN (logical and)")


def combine(op: ReduceOp, acc: np.ndarray, x: np.ndarray) -> None:
    """acc ← op(acc, x), in place, same dtype (integers wrap; bool SUM is `or`)."""
    if acc.dtype == np.bool_ and op in (ReduceOp.SUM, ReduceOp.AVG):
        np.logical_or(acc, x, out=acc)
    elif acc.dtype == np.bool_ and op is ReduceOp.PROD:
        np.logical_and(acc, x, out=acc)
    else:
        _UFUNC[op](acc, x, out=acc)


def finish(op: ReduceOp, acc: np.ndarray, n: int) -> None:
    """The last step of a reduction, once per element on the rank that holds the full fold:
    AVG divides by n (floats round once; integers truncate toward zero, as NCCL does)."""
    if op is not ReduceOp.AVG or n == 1:
        return
    if acc.dtype.kind == "f" or acc.dtype.name == "bfloat16":
        np.divide(acc, acc.dtype.type(n), out=acc, casting="unsafe")
    else:
        q = np.abs(acc) // n if acc.dtype.kind == "i" else acc // n
        np.copyto(acc, np.where(acc < 0, -q, q) if acc.dtype.kind == "i" else q, casting="unsafe")
