"""Program identity, tile shaping, `ky.dot`, `ky.reduce` and `ky.scan`.

Shaping ops work on value tiles and on pointer tiles alike (a pointer tile reshapes its offsets).
Reduce/scan: a combiner of one op on (acc, x) -- addf, maximumf, andi, ... -- runs as the numpy
ufunc's reduce/accumulate (f16/bf16 sums accumulate in f32; numpy's pairwise float sum differs
from a sequential one by rounding only). Any other combiner, including multi-operand argmax, is
evaluated vectorised: a tree of log2(n) combiner calls for reduce, a Hillis-Steele prefix of
log2(n) calls for scan (legal: the contract makes combiners associative and commutative).
"""

from __future__ import annotations

import numpy as np

from .arith_ops import _elementwise, as_unsigned
from .registry import lowers
from .irtypes import F32, NARROW_FLOATS, is_ptr, np_dtype


def _result(op):
    return op.results[0]


@lowers("ky.program_id", "ky.num_programs")
def program_id(op, cx):
    axis, r, state = op.axis.value.data, cx.slot(_result(op)), cx.state
    src = "pid" if op.name == "ky.program_id" else "grid"

    def step(env):
        env[r] = np.int32(getattr(state, src)[axis])

    return step


@lowers("ky.make_range")
def make_range(op, cx):
    value = np.arange(op.start.value.data, op.end.value.data, dtype=np.int32)
    r = cx.slot(_result(op))

    def step(env):
        env[r] = value

    return step


def _shaping(op, cx, fn):
    if is_ptr(_result(op).type):
        return _elementwise(op, cx, lambda p: p.with_offsets(fn(p.off)))
    return _elementwise(op, cx, fn)


@lowers("ky.splat", "ky.broadcast")
def splat(op, cx):
    shape = tuple(_result(op).type.get_shape())
    return _shaping(op, cx, lambda x: np.broadcast_to(x, shape))


@lowers("ky.expand_dims")
def expand_dims(op, cx):
    axis = op.axis.value.data
    return _shaping(op, cx, lambda x: np.expand_dims(x, axis))


@lowers("ky.reshape")
def reshape(op, cx):
    shape = tuple(_result(op).type.get_shape())
    return _shaping(op, cx, lambda x: np.reshape(x, shape))


@lowers("ky.trans")
def trans(op, cx):
    order = tuple(op.order.get_values())
    return _shaping(op, cx, lambda x: np.transpose(x, order))


@lowers("ky.dot")
def dot(op, cx):
    acc_dt = np_dtype(op.acc.type)
    work = F32 if acc_dt in NARROW_FLOATS else acc_dt

    def fn(a, b, acc):
        return (acc.astype(work) + np.matmul(a.astype(work), b.astype(work))).astype(acc_dt)

    return _elementwise(op, cx, fn)


# --------------------------------------------------------------------------- reduce and scan

_UFUNCS = {"arith.addf": np.add, "arith.mulf": np.multiply, "arith.maximumf": np.maximum,
           "arith.minimumf": np.minimum, "arith.maxnumf": np.fmax, "arith.minnumf": np.fmin,
           "arith.addi": np.add, "arith.muli": np.multiply, "arith.maxsi": np.maximum,
           "arith.minsi": np.minimum, "arith.maxui": np.maximum, "arith.minui": np.minimum,
           "arith.andi": np.bitwise_and, "arith.ori": np.bitwise_or, "arith.xori": np.bitwise_xor}


def _single_op_combiner(op):
    """The op name when the combiner is `yield(f(acc, x))` for one element-wise f, else None."""
    block = op.combiner.block
    ops = list(block.ops)
    if len(op.srcs) != 1 or len(ops) != 2 or ops[0].name not in _UFUNCS:
        return None
    f, term = ops
    if len(f.operands) != 2 or set(f.operands) != set(block.args) or list(term.operands) != [f.results[0]]:
        return None
    return f.name


def _ufunc_fn(name, dt, scan: bool, axis: int):
    uf = _UFUNCS[name]
    if dt == np.bool_ and name not in ("arith.andi", "arith.ori", "arith.xori"):
        return None
    if dt in NARROW_FLOATS:
        method = uf.accumulate if scan else uf.reduce
        return lambda x: method(x.astype(F32), axis=axis).astype(dt)
    method = uf.accumulate if scan else uf.reduce
    if name in ("arith.maxui", "arith.minui"):
        # compare as unsigned: reduce in the unsigned twin type (not `dt`, which is signed)
        return as_unsigned(lambda x: method(x, axis=axis), dt)
    return (lambda x: method(x, axis=axis, dtype=dt)) if dt.kind in "iub" else (lambda x: method(x, axis=axis))


def _tree_reduce(xs, combine):
    """Fold the last axis of every array in xs pairwise: log2(n) calls of combine(accs + news)."""
    n = xs[0].shape[-1]
    while n > 1:
        h = n // 2
        out = combine([x[..., :h] for x in xs] + [x[..., h:2 * h] for x in xs])
        out = [np.broadcast_to(o, xs[0][..., :h].shape) for o in out]
        xs = [np.concatenate([o, x[..., 2 * h:]], axis=-1) if n % 2 else o for o, x in zip(out, xs)]
        n = h + n % 2
    return [x[..., 0] for x in xs]


def _prefix_scan(xs, combine):
    """Inclusive scan along the last axis (Hillis-Steele): log2(n) calls of combine."""
    n, d = xs[0].shape[-1], 1
    while d < n:
        out = combine([x[..., :n - d] for x in xs] + [x[..., d:] for x in xs])
        xs = [np.concatenate([x[..., :d], np.broadcast_to(o, x[..., d:].shape)], axis=-1) for o, x in zip(out, xs)]
        d *= 2
    return xs


@lowers("ky.reduce", "ky.scan")
def reduce_or_scan(op, cx):
    scan = op.name == "ky.scan"
    axis = op.axis.value.data
    srcs = [cx.slot(s) for s in op.srcs]
    res = [cx.slot(r) for r in op.res]
    name = _single_op_combiner(op)
    fast = name and _ufunc_fn(name, np_dtype(op.srcs[0].type), scan, axis)
    if fast:
        (s,), (r,) = srcs, res

        def fast_step(env):
            env[r] = fast(env[s])[()]

        return fast_step
    block = cx.block(op.combiner.block)
    algorithm = _prefix_scan if scan else _tree_reduce

    def step(env):
        xs = [np.moveaxis(np.asarray(env[s]), axis, -1) for s in srcs]
        out = algorithm(xs, lambda vals: block.run(env, vals))
        for r, o in zip(res, out):
            env[r] = np.moveaxis(o, -1, axis) if scan else o[()]

    return step

