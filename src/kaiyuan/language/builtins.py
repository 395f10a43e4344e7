"""The builtins of `kaiyuan.language`, with Triton's names and meaning (docs/language.md).

Each builtin runs at compile time inside the frontend: it receives frontend values (tensors,
constexprs, Python numbers) and emits IR through `semantic`. Calling one outside a kernel is an
error that says so.
"""

from __future__ import annotations

import builtins as _py

from xdsl.dialects import arith, math
from xdsl.ir import Block, Region

from ..ir import ky
from ..runtime import dtypes as dt
from . import semantic as sem
from .core import constexpr, is_ptr, pointer_type, tensor

_BUILTINS: set[str] = set()


def builtin(fn):
    """Mark a function as a language builtin (the frontend calls it at compile time)."""
    fn.__ky_builtin__ = True
    _BUILTINS.add(fn.__name__)
    return fn


def _c(x):
    """Unwrap a constexpr (or a Python value) to the Python value."""
    return x.value if isinstance(x, constexpr) else x


def _int(x, what: str) -> int:
    v = _c(x)
    if isinstance(v, tensor):
        from ..runtime.errors import ConstexprError

        b = sem.current()
        raise ConstexprError(f"{what} must be a compile-time integer, got a run-time value {v!r}",
                             hint="annotate the kernel parameter with kl.constexpr", loc=b.loc())
    if not isinstance(v, int):
        raise sem.error(f"{what} must be a compile-time integer, got {v!r}",
                        hint="annotate the kernel parameter with kl.constexpr")
    return v


def _shape(shape) -> tuple[int, ...]:
    shape = _c(shape)
    if not isinstance(shape, (tuple, list)):
        shape = (shape,)
    return tuple(_int(s, "a tile dimension") for s in shape)


# ------------------------------------------------------------------------------ program identity


@builtin
def program_id(axis):
    axis = _int(axis, "program_id axis")
    if axis not in (0, 1, 2):
        raise sem.error(f"program_id axis must be 0, 1 or 2, got {axis}")
    return sem.make(sem.emit(ky.ProgramIdOp(axis)).results[0], dt.int32)


@builtin
def num_programs(axis):
    axis = _int(axis, "num_programs axis")
    if axis not in (0, 1, 2):
        raise sem.error(f"num_programs axis must be 0, 1 or 2, got {axis}")
    return sem.make(sem.emit(ky.NumProgramsOp(axis)).results[0], dt.int32)


# --------------------------------------------------------------------------------- tile creation


@builtin
def arange(start, end):
    start, end = _int(start, "arange start"), _int(end, "arange end")
    if end <= start:
        raise sem.error(f"arange({start}, {end}) is empty")
    return sem.make(sem.emit(ky.MakeRangeOp(start, end)).results[0], dt.int32, (end - start,))


@builtin
def full(shape, value, dtype):
    shape, t = _shape(shape), dt.dtype(_c(dtype))
    v = sem.to_tensor(value, t) if not isinstance(value, tensor) else sem.cast(value, t)
    return sem.splat(v, shape) if shape else v


@builtin
def zeros(shape, dtype):
    return full(shape, 0, dtype)


@builtin
def zeros_like(x):
    return full(x.shape, 0, x.dtype)


@builtin
def full_like(x, value):
    return full(x.shape, value, x.dtype)


@builtin
def cdiv(x, y):
    if not isinstance(x, tensor) and not isinstance(y, tensor):
        return constexpr((_c(x) + _c(y) - 1) // _c(y))
    return (x + y - 1) // y


@builtin
def static_range(*args):
    return range(*[_int(a, "static_range bound") for a in args])


def _range(*args, num_stages=None, loop_unroll_factor=None, disallow_acc_multi_buffer=False, flatten=False,
           warp_specialize=False, **_hints):
    """Triton's `tl.range`: `for i in kl.range(lo, hi, step, num_stages=2)` is a run-time loop
    (scf.for), exactly like Python's `range`; the software-pipelining hints are accepted and ignored.
    Called anywhere else it is Python's `range`, so `from kaiyuan.language import *` is harmless."""
    return _py.range(*[_c(a) for a in args])


# Exported as `kl.range` by the package (not through __all__ here: this module uses Python's range).
_range.__name__ = _range.__qualname__ = "range"
_range.__ky_builtin__ = True


# ----------------------------------------------------------------------------------- shape ops


@builtin
def broadcast_to(x, *shape):
    shape = _shape(shape[0] if len(shape) == 1 else shape)
    return sem.broadcast_to(sem.to_tensor(x), shape)


@builtin
def broadcast(a, b):
    return tuple(sem.broadcast(sem.to_tensor(a), sem.to_tensor(b)))


@builtin
def expand_dims(x, axis):
    x = sem.to_tensor(x)
    for a in (_c(axis) if isinstance(_c(axis), (tuple, list)) else [axis]):
        x = sem.expand_dims(x, _int(a, "axis"))
    return x


@builtin
def reshape(x, *shape, can_reorder=False):
    return sem.reshape(sem.to_tensor(x), _shape(shape[0] if len(shape) == 1 else shape))


view = reshape


@builtin
def trans(x, *dims):
    return sem.trans(sem.to_tensor(x), *dims)


permute = trans


@builtin
def ravel(x):
    return sem.reshape(x, (x.numel,))


# ---------------------------------------------------------------------------------------- memory


def _mask_other(ptr: tensor, mask, other):
    m = None
    if mask is not None and _c(mask) is not None:
        m = sem.to_tensor(_c(mask)) if not isinstance(mask, tensor) else mask
        if m.dtype != dt.bool_:
            m = sem.cast(m, dt.bool_)
    shape = sem.broadcast_shapes(ptr.shape, m.shape if m is not None else ())
    ptr = sem.broadcast_to(ptr, shape) if shape else ptr
    if m is not None:
        m = sem.broadcast_to(m, shape) if shape else m
    o = None
    if other is not None and _c(other) is not None:
        o = sem.cast(sem.to_tensor(_c(other), ptr.dtype.element_ty) if not isinstance(other, tensor) else other,
                     ptr.dtype.element_ty)
        o = sem.broadcast_to(o, shape) if shape else o
    return ptr, m, o


def _check_ptr(ptr, what: str) -> tensor:
    if not isinstance(ptr, tensor) or not is_ptr(ptr.dtype):
        raise sem.error(f"{what} needs a pointer or a tile of pointers, got {ptr!r}",
                        hint="pass an array/tensor argument and add integer offsets to it")
    return ptr


@builtin
def load(pointer, mask=None, other=None, boundary_check=(), padding_option="", cache_modifier="",
         eviction_policy="", volatile=False):
    ptr = _check_ptr(pointer, "load")
    ptr, m, o = _mask_other(ptr, mask, other)
    op = ky.LoadOp(ptr.handle, m.handle if m is not None else None, o.handle if o is not None else None)
    return sem.make(sem.emit(op).results[0], ptr.dtype.element_ty, ptr.shape)


@builtin
def store(pointer, value, mask=None, boundary_check=(), cache_modifier="", eviction_policy=""):
    ptr = _check_ptr(pointer, "store")
    v = sem.to_tensor(value, ptr.dtype.element_ty) if not isinstance(value, tensor) else value
    ptr, m, _ = _mask_other(ptr, mask, None)
    shape = sem.broadcast_shapes(ptr.shape, v.shape, m.shape if m is not None else ())
    if shape != ptr.shape:
        ptr = sem.broadcast_to(ptr, shape)
        m = sem.broadcast_to(m, shape) if m is not None else None
    v = sem.cast(sem.broadcast_to(v, shape) if shape else v, ptr.dtype.element_ty)
    sem.emit(ky.StoreOp(ptr.handle, v.handle, m.handle if m is not None else None))


def _atomic(kind: str, pointer, val, mask):
    ptr = _check_ptr(pointer, f"atomic_{kind}")
    t = ptr.dtype.element_ty
    v = sem.to_tensor(val, t) if not isinstance(val, tensor) else val
    shape = sem.broadcast_shapes(ptr.shape, v.shape)
    ptr, m, _ = _mask_other(sem.broadcast_to(ptr, shape) if shape else ptr, mask, None)
    v = sem.cast(sem.broadcast_to(v, ptr.shape) if ptr.shape else v, t)
    if kind == "add" and t.is_floating:
        kind = "fadd"
    elif kind in ("max", "min") and t.kind == "uint":
        kind = "u" + kind
    op = ky.AtomicRMWOp(kind, ptr.handle, v.handle, m.handle if m is not None else None)
    return sem.make(sem.emit(op).results[0], t, ptr.shape)


@builtin
def atomic_add(pointer, val, mask=None, sem_=None, scope=None, **_):
    return _atomic("add", pointer, val, mask)


@builtin
def atomic_max(pointer, val, mask=None, **_):
    return _atomic("max", pointer, val, mask)


@builtin
def atomic_min(pointer, val, mask=None, **_):
    return _atomic("min", pointer, val, mask)


@builtin
def atomic_and(pointer, val, mask=None, **_):
    return _atomic("and", pointer, val, mask)


@builtin
def atomic_or(pointer, val, mask=None, **_):
    return _atomic("or", pointer, val, mask)


@builtin
def atomic_xor(pointer, val, mask=None, **_):
    return _atomic("xor", pointer, val, mask)


@builtin
def atomic_xchg(pointer, val, mask=None, **_):
    return _atomic("xchg", pointer, val, mask)


@builtin
def atomic_cas(pointer, cmp, val, **_):
    ptr = _check_ptr(pointer, "atomic_cas")
    t = ptr.dtype.element_ty
    c = sem.cast(sem.to_tensor(cmp, t), t)
    v = sem.cast(sem.to_tensor(val, t), t)
    ptr, c, v = sem.broadcast(ptr, c, v)
    return sem.make(sem.emit(ky.AtomicCASOp(ptr.handle, c.handle, v.handle)).results[0], t, ptr.shape)


# ------------------------------------------------------------------------------------ math


def _unary(cls, x, float_only=True):
    x = sem.to_tensor(x)
    if float_only and not x.dtype.is_floating:
        x = sem.cast(x, dt.float32)
    return sem.make(sem.emit(cls(x.handle)).results[0], x.dtype, x.shape)


def _math_builtin(name, cls):
    def fn(x, **_):
        return _unary(cls, x)

    fn.__name__ = name
    fn.__doc__ = f"Element-wise {name} (float; integers are converted to fp32)."
    return builtin(fn)


exp = _math_builtin("exp", math.ExpOp)
exp2 = _math_builtin("exp2", math.Exp2Op)
log = _math_builtin("log", math.LogOp)
log2 = _math_builtin("log2", math.Log2Op)
log1p = _math_builtin("log1p", math.Log1pOp)
expm1 = _math_builtin("expm1", math.ExpM1Op)
sqrt = _math_builtin("sqrt", math.SqrtOp)
sqrt_rn = sqrt
rsqrt = _math_builtin("rsqrt", math.RsqrtOp)
sin = _math_builtin("sin", math.SinOp)
cos = _math_builtin("cos", math.CosOp)
tan = _math_builtin("tan", math.TanOp)
tanh = _math_builtin("tanh", math.TanhOp)
erf = _math_builtin("erf", math.ErfOp)
floor = _math_builtin("floor", math.FloorOp)
ceil = _math_builtin("ceil", math.CeilOp)


@builtin
def abs(x):
    x = sem.to_tensor(x)
    if x.dtype.is_floating:
        return _unary(math.AbsFOp, x)
    if x.dtype.kind in ("uint", "bool"):
        return x
    return _unary(math.AbsIOp, x, float_only=False)


@builtin
def sigmoid(x):
    x = sem.to_tensor(x)
    if not x.dtype.is_floating:
        x = sem.cast(x, dt.float32)
    return 1.0 / (1.0 + exp(-x))


@builtin
def fma(x, y, z):
    x, y, _ = sem.operands(x, y)
    x, z, t = sem.operands(x, z)
    y, _, _ = sem.operands(y, z)
    return sem.make(sem.emit(math.FmaOp(x.handle, y.handle, z.handle)).results[0], t, x.shape)


@builtin
def div_rn(x, y):
    return x / y


fdiv = div_rn


@builtin
def pow(x, y):  # noqa: A001 - Triton's name
    x, y, t = sem.operands(x, y)
    if not t.is_floating:
        x, y, t = sem.cast(x, dt.float32), sem.cast(y, dt.float32), dt.float32
    return sem.make(sem.emit(math.PowFOp(x.handle, y.handle)).results[0], t, x.shape)


@builtin
def maximum(x, y, propagate_nan=None):
    x, y, t = sem.operands(x, y)
    cls = arith.MaximumfOp if t.is_floating else (arith.MaxUIOp if t.kind in ("uint", "bool") else arith.MaxSIOp)
    return sem.make(sem.emit(cls(x.handle, y.handle)).results[0], t, x.shape)


@builtin
def minimum(x, y, propagate_nan=None):
    x, y, t = sem.operands(x, y)
    cls = arith.MinimumfOp if t.is_floating else (arith.MinUIOp if t.kind in ("uint", "bool") else arith.MinSIOp)
    return sem.make(sem.emit(cls(x.handle, y.handle)).results[0], t, x.shape)


@builtin
def clamp(x, min, max, propagate_nan=None):  # noqa: A002
    return minimum(maximum(x, min), max)


@builtin
def where(condition, x, y):
    return sem.where(condition, x, y)


@builtin
def cast(x, dtype, bitcast=False, **_):
    return sem.cast(x, dtype, bitcast=bitcast)


# ------------------------------------------------------------------------------------- dot


_ACC = {"fp16": dt.float32, "bf16": dt.float32, "fp32": dt.float32, "fp64": dt.float64,
        "i8": dt.int32, "u8": dt.int32, "i16": dt.int32, "i32": dt.int32}


@builtin
def dot(a, b, acc=None, input_precision=None, allow_tf32=None, max_num_imprecise_acc=None, out_dtype=None):
    a, b = sem.to_tensor(a), sem.to_tensor(b)
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise sem.error(f"dot needs 2-D tiles, got {list(a.shape)} and {list(b.shape)}")
    if a.shape[1] != b.shape[0]:
        raise sem.error(f"dot shapes do not agree: {list(a.shape)} @ {list(b.shape)}")
    if a.dtype != b.dtype:
        t = sem.promote(a.dtype, b.dtype)
        a, b = sem.cast(a, t), sem.cast(b, t)
    out_t = dt.dtype(_c(out_dtype)) if _c(out_dtype) is not None else _ACC.get(a.dtype.name)
    if out_t is None:
        raise sem.error(f"dot does not support {a.dtype!r} inputs", hint="use fp16, bf16, fp32, fp64 or int8")
    shape = (a.shape[0], b.shape[1])
    if acc is None or _c(acc) is None:
        c = full(shape, 0, out_t)
    else:
        c = sem.cast(sem.broadcast_to(sem.to_tensor(acc), shape), out_t)
    return sem.make(sem.emit(ky.DotOp(a.handle, b.handle, c.handle)).results[0], out_t, shape)


# ------------------------------------------------------------------------------ reductions


def _combine_region(elem_types, body) -> Region:
    """Build a combiner region: block args (acc..., x...) → body(builder values) → ky.yield."""
    ir_types = [sem.ir_type(t) for t in elem_types]
    block = Block(arg_types=ir_types + ir_types)
    b = sem.current()
    saved = b.block
    b.block = block
    try:
        n = len(elem_types)
        accs = [sem.make(a, t) for a, t in zip(block.args[:n], elem_types)]
        xs = [sem.make(a, t) for a, t in zip(block.args[n:], elem_types)]
        outs = body(accs, xs)
        outs = [sem.cast(o, t) for o, t in zip(outs, elem_types)]
        b.emit(ky.YieldOp(*[o.handle for o in outs]))
    finally:
        b.block = saved
    return Region([block])


def _reduce(srcs: list[tensor], axis, body, keep_dims=False):
    if axis is None or _c(axis) is None:
        srcs = [sem.reshape(s, (s.numel,)) if len(s.shape) != 1 else s for s in srcs]
        axis = 0
    axis = _int(axis, "reduction axis")
    shape = srcs[0].shape
    if not shape:
        return srcs
    if axis < 0:
        axis += len(shape)
    if not 0 <= axis < len(shape):
        raise sem.error(f"reduction axis {axis} out of range for shape {list(shape)}")
    region = _combine_region([s.dtype for s in srcs], body)
    op = sem.emit(ky.ReduceOp([s.handle for s in srcs], axis, region))
    out_shape = shape[:axis] + shape[axis + 1:]
    outs = [sem.make(r, s.dtype, out_shape) for r, s in zip(op.results, srcs)]
    if keep_dims:
        outs = [sem.expand_dims(o, axis) if o.shape else sem.splat(o, (1,)) for o in outs]
    return outs


def _sum_type(t):
    if t.is_int and t.bits < 32:
        return dt.int32 if t.kind != "uint" else dt.uint32
    return t


@builtin
def sum(input, axis=None, keep_dims=False, dtype=None):  # noqa: A001
    x = sem.to_tensor(input)
    t = dt.dtype(_c(dtype)) if _c(dtype) is not None else _sum_type(x.dtype)
    x = sem.cast(x, t)
    return _reduce([x], axis, lambda a, b: [a[0] + b[0]], keep_dims)[0]


@builtin
def max(input, axis=None, return_indices=False, return_indices_tie_break_left=True, keep_dims=False):  # noqa: A001
    if _c(return_indices):
        return _arg_reduce(input, axis, "gt", keep_dims)
    return _reduce([sem.to_tensor(input)], axis, lambda a, b: [maximum(a[0], b[0])], keep_dims)[0]


@builtin
def min(input, axis=None, return_indices=False, return_indices_tie_break_left=True, keep_dims=False):  # noqa: A001
    if _c(return_indices):
        return _arg_reduce(input, axis, "lt", keep_dims)
    return _reduce([sem.to_tensor(input)], axis, lambda a, b: [minimum(a[0], b[0])], keep_dims)[0]


def _arg_reduce(input, axis, better: str, keep_dims):
    x = sem.to_tensor(input)
    ax = _int(axis, "axis") if _c(axis) is not None else 0
    if _c(axis) is None and len(x.shape) != 1:
        x = sem.reshape(x, (x.numel,))
    ax = ax + len(x.shape) if ax < 0 else ax
    idx = arange(0, x.shape[ax])
    for d in range(len(x.shape)):
        if d != ax:
            idx = sem.expand_dims(idx, d)
    idx = sem.broadcast_to(idx, x.shape)

    def body(a, b):
        av, ai = a
        bv, bi = b
        take_b = sem.binary("or", sem.compare(better, bv, av),
                            sem.binary("and", sem.compare("eq", bv, av), sem.compare("lt", bi, ai)))
        return [sem.where(take_b, bv, av), sem.where(take_b, bi, ai)]

    v, i = _reduce([x, idx], ax, body, keep_dims)
    return v, i


@builtin
def argmax(input, axis, tie_break_left=True, keep_dims=False):
    return _arg_reduce(input, axis, "gt", keep_dims)[1]


@builtin
def argmin(input, axis, tie_break_left=True, keep_dims=False):
    return _arg_reduce(input, axis, "lt", keep_dims)[1]


@builtin
def xor_sum(input, axis=None, keep_dims=False):
    return _reduce([sem.to_tensor(input)], axis, lambda a, b: [a[0] ^ b[0]], keep_dims)[0]


@builtin
def reduce(input, axis, combine_fn, keep_dims=False):
    """Generic reduction with a @jit combine function of two (tuples of) scalars."""
    from .frontend import call_jit

    srcs = list(input) if isinstance(input, tuple) else [input]
    srcs = [sem.to_tensor(s) for s in srcs]

    def body(a, b):
        out = call_jit(combine_fn, a + b)
        return list(out) if isinstance(out, tuple) else [out]

    outs = _reduce(srcs, axis, body, keep_dims)
    return tuple(outs) if isinstance(input, tuple) else outs[0]


def _scan(srcs, axis, body, reverse=False):
    axis = _int(axis, "scan axis")
    shape = srcs[0].shape
    axis = axis + len(shape) if axis < 0 else axis
    if reverse:
        raise sem.error("reverse scans are not supported yet")
    region = _combine_region([s.dtype for s in srcs], body)
    op = sem.emit(ky.ScanOp([s.handle for s in srcs], axis, region))
    return [sem.make(r, s.dtype, shape) for r, s in zip(op.results, srcs)]


@builtin
def cumsum(input, axis=0, reverse=False):
    x = sem.to_tensor(input)
    x = sem.cast(x, _sum_type(x.dtype))
    return _scan([x], axis, lambda a, b: [a[0] + b[0]], _c(reverse))[0]


@builtin
def cumprod(input, axis=0, reverse=False):
    return _scan([sem.to_tensor(input)], axis, lambda a, b: [a[0] * b[0]], _c(reverse))[0]


@builtin
def softmax(x, ieee_rounding=False):
    z = x - max(x, 0)
    num = exp(z)
    return num / sum(num, 0)


# ------------------------------------------------------------------------------- debugging


@builtin
def device_print(prefix, *args, hex=False):  # noqa: A002
    vals = [sem.to_tensor(a) for a in args]
    sem.emit(ky.PrintOp(str(_c(prefix)), [v.handle for v in vals]))


@builtin
def device_assert(cond, msg="", mask=None):
    c = sem.to_tensor(cond)
    if c.dtype != dt.bool_:
        c = sem.cast(c, dt.bool_)
    if mask is not None:
        c = sem.binary("or", c, sem.invert(sem.cast(sem.to_tensor(mask), dt.bool_)))
    sem.emit(ky.AssertOp(c.handle, str(_c(msg)) or "device_assert failed"))


@builtin
def static_assert(cond, msg=""):
    if not _c(cond):
        raise sem.error(f"static_assert failed: {_c(msg)}")


@builtin
def static_print(*values):
    _py.print(*[_c(v) for v in values])


@builtin
def multiple_of(x, values):
    return x  # a hint; the compiler derives divisibility itself


@builtin
def max_contiguous(x, values):
    return x


@builtin
def max_constancy(x, values):
    return x


@builtin
def debug_barrier():
    return None


@builtin
def assume(cond):
    return None


__all__ = sorted(_BUILTINS | {"view", "permute", "sqrt_rn", "fdiv"})
