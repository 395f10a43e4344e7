"""Typing rules and IR construction for the kernel language (Triton's semantics).

The frontend calls these functions while it walks a kernel's AST; each one checks its operands,
applies Triton's rules (type promotion, numpy-style broadcasting, Python scalars adopting the
other operand's type), and appends `ky`/`arith`/`math` ops to the current block with the
user's source location. Every rule violation is a CompilationError at the user's line.
"""

from __future__ import annotations

import math as _math
import threading

from xdsl.dialects import arith, math
from xdsl.dialects.builtin import (
    BFloat16Type,
    FileLineColLoc,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
)
from xdsl.ir import Block, Operation

from ..ir import arith_ext
from ..ir import ky
from ..runtime import dtypes as dt
from ..runtime.dtypes import DType
from ..runtime.errors import CompilationError
from .core import constexpr, is_ptr, pointer_type, tensor

# ------------------------------------------------------------------------------- builder context


class Builder:
    """Where new ops go (a block) and which user line they come from."""

    def __init__(self, filename: str):
        self.filename = filename
        self.block: Block | None = None
        self.line = 0
        self.col = 0

    def loc(self) -> str:
        return f"{self.filename}:{self.line}"

    def emit(self, op: Operation) -> Operation:
        op.location = FileLineColLoc(StringAttr(self.filename), IntAttr(self.line), IntAttr(self.col))
        self.block.add_op(op)
        return op


_state = threading.local()


def current() -> Builder:
    b = getattr(_state, "builder", None)
    if b is None:
        raise CompilationError(
            "kaiyuan.language functions can only be called inside a @ky.jit kernel",
            hint="call the kernel with kernel[grid](...) instead of running its body in Python",
        )
    return b


def set_builder(b: Builder | None) -> Builder | None:
    old = getattr(_state, "builder", None)
    _state.builder = b
    return old


def error(msg: str, hint: str | None = None) -> CompilationError:
    b = getattr(_state, "builder", None)
    return CompilationError(msg, hint=hint, loc=b.loc() if b else None)


def emit(op: Operation) -> Operation:
    return current().emit(op)


# ---------------------------------------------------------------------------------------- types

_FLOAT_IR = {"fp16": Float16Type(), "bf16": BFloat16Type(), "fp32": Float32Type(), "fp64": Float64Type()}


def ir_type(t) -> object:
    """Language element type → xDSL element type."""
    if isinstance(t, pointer_type):
        return ky.PtrType(ir_type(t.element_ty))
    if t.is_floating:
        return _FLOAT_IR[t.name]
    return IntegerType(t.bits)


def ir_tile(t, shape) -> object:
    return ky.tile(ir_type(t), shape)


def make(handle, t, shape=()) -> tensor:
    return tensor(handle, t, tuple(shape))


def _int_dtype_for(v: int) -> DType:
    if -(2**31) <= v < 2**31:
        return dt.int32
    if -(2**63) <= v < 2**63:
        return dt.int64
    if v < 2**64:
        return dt.uint64
    raise error(f"integer constant {v} does not fit in 64 bits")


def literal_dtype(v) -> DType:
    if isinstance(v, bool):
        return dt.bool_
    if isinstance(v, int):
        return _int_dtype_for(v)
    if isinstance(v, float):
        return dt.float32
    raise error(f"cannot use a value of Python type {type(v).__name__} in a kernel",
                hint="kernel values are tensors, numbers, and constexprs")


def constant(v, t: DType) -> tensor:
    """A scalar constant of type t."""
    v = v.value if isinstance(v, constexpr) else v
    if t.is_floating:
        op = arith.ConstantOp(FloatAttr(float(v), ir_type(t)))
    else:
        iv = int(v)
        bits = t.bits
        if bits == 1:
            iv = 1 if iv else 0
            attr = IntegerAttr(iv, IntegerType(1))
        else:
            iv &= (1 << bits) - 1
            if iv >= 1 << (bits - 1):
                iv -= 1 << bits  # signless IR: store the two's-complement signed value
            attr = IntegerAttr(iv, IntegerType(bits))
        op = arith.ConstantOp(attr)
    return make(emit(op).results[0], t)


def to_tensor(x, like: DType | None = None) -> tensor:
    """Turn a Python number / constexpr into a scalar tensor (of `like`'s type if given)."""
    if isinstance(x, tensor):
        return x
    v = x.value if isinstance(x, constexpr) else x
    if isinstance(v, tensor):
        return v
    if isinstance(v, DType) or v is None:
        raise error(f"expected a value, got {v!r}")
    return constant(v, like if like is not None else literal_dtype(v))


# ---------------------------------------------------------------------------------- broadcasting


def splat(x: tensor, shape) -> tensor:
    if x.shape == tuple(shape):
        return x
    if x.shape:
        return broadcast_to(x, shape)
    return make(emit(ky.SplatOp(x.handle, list(shape))).results[0], x.dtype, shape)


def broadcast_to(x: tensor, shape) -> tensor:
    shape = tuple(shape)
    if x.shape == shape:
        return x
    if not x.shape:
        return splat(x, shape)
    while len(x.shape) < len(shape):
        x = expand_dims(x, 0)
    if any(a not in (1, b) for a, b in zip(x.shape, shape)):
        raise error(f"cannot broadcast shape {list(x.shape)} to {list(shape)}")
    return make(emit(ky.BroadcastOp(x.handle, list(shape))).results[0], x.dtype, shape)


def broadcast_shapes(*shapes) -> tuple[int, ...]:
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = {s[i - rank + len(s)] for s in shapes if i - rank + len(s) >= 0} - {1}
        if len(dims) > 1:
            raise error(f"shapes {[list(s) for s in shapes]} are not compatible for broadcasting")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def broadcast(*xs: tensor) -> list[tensor]:
    shape = broadcast_shapes(*[x.shape for x in xs])
    return [broadcast_to(x, shape) if shape else x for x in xs]


def expand_dims(x: tensor, axis: int) -> tensor:
    axis = int(axis.value if isinstance(axis, constexpr) else axis)
    if axis < 0:
        axis += len(x.shape) + 1
    if not x.shape:
        return splat(x, (1,))
    s = list(x.shape)
    s.insert(axis, 1)
    return make(emit(ky.ExpandDimsOp(x.handle, axis)).results[0], x.dtype, s)


def reshape(x: tensor, shape) -> tensor:
    shape = tuple(int(s.value if isinstance(s, constexpr) else s) for s in shape)
    if _math.prod(shape) != x.numel:
        raise error(f"cannot reshape {list(x.shape)} to {list(shape)}")
    if not x.shape:
        return splat(x, shape)
    return make(emit(ky.ReshapeOp(x.handle, list(shape))).results[0], x.dtype, shape)


def trans(x: tensor, *order) -> tensor:
    if len(order) == 1 and isinstance(order[0], (tuple, list)):
        order = tuple(order[0])
    order = [int(o.value if isinstance(o, constexpr) else o) for o in order] or list(range(len(x.shape)))[::-1]
    if sorted(order) != list(range(len(x.shape))):
        raise error(f"trans order {order} is not a permutation of the {len(x.shape)} dimensions")
    return make(emit(ky.TransOp(x.handle, order)).results[0], x.dtype, [x.shape[o] for o in order])


def subscript(x: tensor, slices) -> tensor:
    """x[None, :] / x[:, None]: insert size-1 dimensions (the only indexing tiles support)."""
    if not isinstance(slices, tuple):
        slices = (slices,)
    axis = 0
    for s in slices:
        s = s.value if isinstance(s, constexpr) else s
        if s is None:
            x = expand_dims(x, axis)
            axis += 1
        elif isinstance(s, slice) and s == slice(None):
            axis += 1
        else:
            raise error(f"unsupported tile index {s!r}", hint="tiles can be indexed with None and : only")
    return x


# --------------------------------------------------------------------------------- type promotion


def _float_rank(t: DType) -> int:
    return {"fp16": 1, "bf16": 1, "fp32": 2, "fp64": 3}[t.name]


def promote(a: DType, b: DType, div: bool = False) -> DType:
    """Triton's computation type for a binary op of element types a and b."""
    if a == b and not (div and a.is_int):
        return a
    if a.is_floating or b.is_floating:
        if a.is_floating and b.is_floating:
            if a.name in ("fp16", "bf16") and b.name in ("fp16", "bf16") and a != b:
                return dt.float32
            return a if _float_rank(a) >= _float_rank(b) else b
        f = a if a.is_floating else b
        return f
    if div:
        return dt.float32
    if a.kind == "bool" and b.kind == "bool":
        return dt.bool_
    if a.bits != b.bits:
        return a if a.bits > b.bits else b
    return a if a.kind == "uint" else b  # same width: unsigned wins (C rules)


def _is_weak(x) -> bool:
    """A Python number (or constexpr number): it adopts the other operand's type."""
    v = x.value if isinstance(x, constexpr) else x
    return isinstance(v, (int, float, bool)) and not isinstance(v, tensor)


def operands(a, b, div: bool = False):
    """Make a and b tensors of a common type and shape; returns (a, b, computation dtype)."""
    if _is_weak(a) and _is_weak(b):
        raise error("internal: both operands are constants")
    if _is_weak(a) or _is_weak(b):
        t = b if _is_weak(a) else a
        v = (a if _is_weak(a) else b)
        v = v.value if isinstance(v, constexpr) else v
        if is_ptr(t.dtype):
            other = to_tensor(v)
        elif isinstance(v, float) and t.dtype.is_int:
            other = to_tensor(v, dt.float32)
        elif isinstance(v, int) and not isinstance(v, bool) and t.dtype.is_int and t.dtype.kind != "bool" and not _fits(v, t.dtype):
            other = to_tensor(v)  # too big for t's type: becomes i64 and promotes
        else:
            other = to_tensor(v, t.dtype if not (t.dtype.kind == "bool" and not isinstance(v, bool)) else None)
        a, b = (other, t) if _is_weak(a) else (t, other)
    a, b = broadcast(a, b)
    if is_ptr(a.dtype) or is_ptr(b.dtype):
        return a, b, None
    ct = promote(a.dtype, b.dtype, div)
    return cast(a, ct), cast(b, ct), ct


def _fits(v: int, t: DType) -> bool:
    if t.kind == "uint":
        return 0 <= v < 2**t.bits
    return -(2 ** (t.bits - 1)) <= v < 2 ** (t.bits - 1)


# ------------------------------------------------------------------------------------ arithmetic

_CMPF = {"lt": "olt", "le": "ole", "gt": "ogt", "ge": "oge", "eq": "oeq", "ne": "une"}
_CMPI_S = {"lt": "slt", "le": "sle", "gt": "sgt", "ge": "sge", "eq": "eq", "ne": "ne"}
_CMPI_U = {"lt": "ult", "le": "ule", "gt": "ugt", "ge": "uge", "eq": "eq", "ne": "ne"}


def _fold(name, a, b):
    import operator as o

    fns = {"add": o.add, "sub": o.sub, "mul": o.mul, "truediv": o.truediv, "floordiv": o.floordiv,
           "mod": o.mod, "and": o.and_, "or": o.or_, "xor": o.xor, "shl": o.lshift, "shr": o.rshift,
           "lt": o.lt, "le": o.le, "gt": o.gt, "ge": o.ge, "eq": o.eq, "ne": o.ne}
    return constexpr(fns[name](a.value if isinstance(a, constexpr) else a, b.value if isinstance(b, constexpr) else b))


def binary(name: str, a, b):
    if not isinstance(a, tensor) and not isinstance(b, tensor):
        return _fold(name, a, b)
    if name in ("lt", "le", "gt", "ge", "eq", "ne"):
        return compare(name, a, b)
    a, b, ct = operands(a, b, div=(name == "truediv"))
    if ct is None:
        return _pointer_arith(name, a, b)
    shape = a.shape
    if ct.is_floating:
        ops = {"add": arith.AddfOp, "sub": arith.SubfOp, "mul": arith.MulfOp, "truediv": arith.DivfOp,
               "mod": arith_ext.RemFOp}
        if name == "floordiv":
            q = _emit2(arith.DivfOp, a, b, ct)
            return make(emit(math.FloorOp(q.handle)).results[0], ct, shape)
        if name not in ops:
            raise error(f"operator {name!r} is not defined for floating-point values")
        return _emit2(ops[name], a, b, ct)
    unsigned = ct.kind == "uint"
    ops = {"add": arith.AddiOp, "sub": arith.SubiOp, "mul": arith.MuliOp,
           "floordiv": arith.DivUIOp if unsigned else arith.DivSIOp,
           "truediv": arith.DivUIOp if unsigned else arith.DivSIOp,
           "mod": arith.RemUIOp if unsigned else arith.RemSIOp,
           "and": arith.AndIOp, "or": arith.OrIOp, "xor": arith.XOrIOp, "shl": arith.ShLIOp,
           "shr": arith.ShRUIOp if unsigned else arith.ShRSIOp}
    return _emit2(ops[name], a, b, ct)


def _emit2(cls, a: tensor, b: tensor, t) -> tensor:
    return make(emit(cls(a.handle, b.handle)).results[0], t, a.shape)


def _pointer_arith(name: str, a: tensor, b: tensor) -> tensor:
    if is_ptr(b.dtype) and name == "add":
        a, b = b, a
    if not is_ptr(a.dtype) or is_ptr(b.dtype) or not b.dtype.is_int or name not in ("add", "sub"):
        raise error(f"pointer arithmetic supports pointer + integer and pointer - integer, not {name}")
    if name == "sub":
        b = neg(b)
    if b.dtype.bits < 32:
        b = cast(b, dt.int32)
    return make(emit(ky.AddPtrOp(a.handle, b.handle)).results[0], a.dtype, a.shape)


def compare(name: str, a, b) -> tensor:
    a, b, ct = operands(a, b)
    if ct is None:
        raise error("comparing pointers is not supported", hint="compare the integer offsets instead")
    if ct.is_floating:
        op = arith_ext.CmpfOp(a.handle, b.handle, _CMPF[name])
    else:
        op = arith_ext.CmpiOp(a.handle, b.handle, (_CMPI_U if ct.kind in ("uint", "bool") else _CMPI_S)[name])
    return make(emit(op).results[0], dt.bool_, a.shape)


def neg(x: tensor) -> tensor:
    if x.dtype.is_floating:
        return make(emit(arith.NegfOp(x.handle)).results[0], x.dtype, x.shape)
    return binary("sub", 0, x)


def invert(x: tensor) -> tensor:
    if not x.dtype.is_int:
        raise error("~ needs an integer or boolean value")
    return binary("xor", x, -1 if x.dtype.kind != "bool" else True)


def logical(name: str, a, b) -> tensor:
    a, b = to_tensor(a), to_tensor(b)
    a, b = cast(a, dt.bool_) if a.dtype != dt.bool_ else a, cast(b, dt.bool_) if b.dtype != dt.bool_ else b
    return binary(name, a, b)


def truthy(x) -> tensor:
    """A scalar i1 from any scalar value (for if/while conditions)."""
    x = to_tensor(x)
    if x.shape:
        raise error("a condition must be a scalar, not a tile", hint="reduce the tile first (kl.max, kl.sum) or use kl.where")
    return x if x.dtype == dt.bool_ else compare("ne", x, 0)


# ----------------------------------------------------------------------------------------- casts


def cast(x, t, bitcast: bool = False) -> tensor:
    if isinstance(t, constexpr):
        t = t.value
    t = t if isinstance(t, pointer_type) else dt.dtype(t)
    x = to_tensor(x)
    if x.dtype == t:
        return x
    shape = x.shape
    ty = ir_tile(t, shape)
    src = x.dtype
    if is_ptr(t) or is_ptr(src):
        raise error(f"cannot cast {src!r} to {t!r}", hint="pointer casts are not supported yet")
    if bitcast:
        if src.bits != t.bits:
            raise error(f"bitcast needs equal bit widths, got {src!r} and {t!r}")
        if src.ir == t.ir:
            return make(x.handle, t, shape)
        return make(emit(arith.BitcastOp(x.handle, ty)).results[0], t, shape)
    if src.is_floating and t.is_floating:
        if src.name in ("fp16", "bf16") and t.name in ("fp16", "bf16"):
            return cast(cast(x, dt.float32), t)
        cls = arith.ExtFOp if t.bits > src.bits else arith.TruncFOp
        return make(emit(cls(x.handle, ty)).results[0], t, shape)
    if src.is_floating:  # float → int
        if t.kind == "bool":
            return compare("ne", x, 0.0)
        cls = arith_ext.FPToUIOp if t.kind == "uint" else arith_ext.FPToSIOp
        return make(emit(cls(x.handle, ty)).results[0], t, shape)
    if t.is_floating:  # int → float
        cls = arith_ext.UIToFPOp if src.kind in ("uint", "bool") else arith_ext.SIToFPOp
        return make(emit(cls(x.handle, ty)).results[0], t, shape)
    if t.kind == "bool":
        return compare("ne", x, 0)
    if src.bits == t.bits:
        return make(x.handle, t, shape)  # signless IR: i32 and u32 share a type
    if t.bits < src.bits:
        return make(emit(arith_ext.TruncIOp(x.handle, ty)).results[0], t, shape)
    cls = arith_ext.ExtUIOp if src.kind in ("uint", "bool") else arith_ext.ExtSIOp
    return make(emit(cls(x.handle, ty)).results[0], t, shape)


def where(c, a, b) -> tensor:
    c = to_tensor(c)
    if c.dtype != dt.bool_:
        c = cast(c, dt.bool_)
    if isinstance(a, tensor) or isinstance(b, tensor):
        a, b, _ = operands(a, b)
    else:
        a, b = to_tensor(a), to_tensor(b)
        a, b, _ = operands(a, b)
    c, a, b = broadcast(c, a, b)
    return make(emit(arith_ext.SelectOp(c.handle, a.handle, b.handle)).results[0], a.dtype, a.shape)
