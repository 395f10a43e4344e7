"""The `ky` dialect: kaiyuan's portable tile-level IR (DESIGN.md §3, spec in docs/ir.md).

A kernel is a `func.func` whose arguments are scalars (`i32`, `f32`, ...) and pointers
(`!ky.ptr<f32>`). Tiles are builtin ranked `tensor<...>` values with static shapes whose element
type is a scalar type or a pointer. `ky` ops work beside upstream `arith`, `math`, `scf`, `func`;
arithmetic on tiles is plain `arith`/`math` on tensor types (element-wise, equal shapes: the
frontend inserts `ky.broadcast`/`ky.splat` first). Constants are scalar `arith.constant`s;
tiles of a constant are `ky.splat`s of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    AnyFloat,
    DenseArrayBase,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    i1,
    i32,
)
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, Region, SSAValue, TypeAttribute
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.traits import IsTerminator, Pure
from xdsl.utils.exceptions import VerifyException

VERSION = "0.1"


@irdl_attr_definition
class PtrType(ParametrizedAttribute, TypeAttribute):
    """`!ky.ptr<T>`: address of an element of type T in global (device) memory."""

    name = "ky.ptr"
    pointee: Attribute

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_attribute(self.pointee)

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[Attribute]:
        with parser.in_angle_brackets():
            return (parser.parse_type(),)


# ---------------------------------------------------------------------------------------- helpers


def shape_of(t: Attribute) -> tuple[int, ...]:
    """Static shape of a tile type; () for a scalar."""
    return tuple(t.get_shape()) if isinstance(t, TensorType) else ()


def element_of(t: Attribute) -> Attribute:
    return t.element_type if isinstance(t, TensorType) else t


def with_element(t: Attribute, elem: Attribute) -> Attribute:
    """The type of the same shape as `t` (tile or scalar) holding `elem`."""
    return TensorType(elem, shape_of(t)) if isinstance(t, TensorType) else elem


def tile(elem: Attribute, shape: Sequence[int]) -> Attribute:
    return TensorType(elem, list(shape)) if len(shape) else elem


def _i32_prop(v: int) -> IntegerAttr:
    return IntegerAttr(v, i32)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise VerifyException(msg)


def _same_shape(op: IRDLOperation, *types: Attribute) -> None:
    shapes = {shape_of(t) for t in types}
    _check(len(shapes) == 1, f"{op.name}: operand shapes differ: {sorted(shapes)}")


# ------------------------------------------------------------------------------- program identity


@irdl_op_definition
class ProgramIdOp(IRDLOperation):
    """Index of this program along grid `axis` (0, 1 or 2)."""

    name = "ky.program_id"
    axis = prop_def(IntegerAttr)
    result = result_def(i32)
    traits = traits_def(Pure())

    def __init__(self, axis: int):
        super().__init__(properties={"axis": _i32_prop(axis)}, result_types=[i32])

    def verify_(self) -> None:
        _check(self.axis.value.data in (0, 1, 2), f"{self.name}: axis must be 0, 1 or 2")


@irdl_op_definition
class NumProgramsOp(IRDLOperation):
    """Number of programs along grid `axis`."""

    name = "ky.num_programs"
    axis = prop_def(IntegerAttr)
    result = result_def(i32)
    traits = traits_def(Pure())

    def __init__(self, axis: int):
        super().__init__(properties={"axis": _i32_prop(axis)}, result_types=[i32])

    def verify_(self) -> None:
        _check(self.axis.value.data in (0, 1, 2), f"{self.name}: axis must be 0, 1 or 2")


# ----------------------------------------------------------------------------------- tile shaping


@irdl_op_definition
class MakeRangeOp(IRDLOperation):
    """`tensor<Nxi32>` holding start, start+1, ..., end-1 (N = end - start)."""

    name = "ky.make_range"
    start = prop_def(IntegerAttr)
    end = prop_def(IntegerAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, start: int, end: int):
        super().__init__(
            properties={"start": _i32_prop(start), "end": _i32_prop(end)},
            result_types=[TensorType(i32, [end - start])],
        )

    def verify_(self) -> None:
        n = self.end.value.data - self.start.value.data
        _check(n > 0, f"{self.name}: end must be greater than start")
        _check(self.result.type == TensorType(i32, [n]), f"{self.name}: result must be tensor<{n}xi32>")


@irdl_op_definition
class SplatOp(IRDLOperation):
    """A tile whose every element is the scalar `src`."""

    name = "ky.splat"
    src = operand_def()
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, src: SSAValue, shape: Sequence[int]):
        super().__init__(operands=[src], result_types=[TensorType(src.type, list(shape))])

    def verify_(self) -> None:
        _check(not isinstance(self.src.type, TensorType), f"{self.name}: source must be a scalar")
        _check(self.result.type.element_type == self.src.type, f"{self.name}: element type mismatch")


@irdl_op_definition
class BroadcastOp(IRDLOperation):
    """Repeat a tile along its size-1 dimensions to the result shape (same rank)."""

    name = "ky.broadcast"
    src = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, src: SSAValue, shape: Sequence[int]):
        super().__init__(operands=[src], result_types=[with_element(TensorType(i1, list(shape)), element_of(src.type))])

    def verify_(self) -> None:
        s, r = shape_of(self.src.type), shape_of(self.result.type)
        _check(len(s) == len(r), f"{self.name}: rank must not change ({s} -> {r})")
        _check(all(a in (1, b) for a, b in zip(s, r)), f"{self.name}: cannot broadcast {s} to {r}")
        _check(element_of(self.src.type) == element_of(self.result.type), f"{self.name}: element type mismatch")


@irdl_op_definition
class ExpandDimsOp(IRDLOperation):
    """Insert a dimension of size 1 at `axis`."""

    name = "ky.expand_dims"
    src = operand_def(TensorType)
    axis = prop_def(IntegerAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, src: SSAValue, axis: int):
        s = list(shape_of(src.type))
        s.insert(axis, 1)
        super().__init__(operands=[src], properties={"axis": _i32_prop(axis)},
                         result_types=[TensorType(element_of(src.type), s)])

    def verify_(self) -> None:
        s = list(shape_of(self.src.type))
        a = self.axis.value.data
        _check(0 <= a <= len(s), f"{self.name}: axis {a} out of range")
        s.insert(a, 1)
        _check(shape_of(self.result.type) == tuple(s), f"{self.name}: result shape must be {s}")


@irdl_op_definition
class ReshapeOp(IRDLOperation):
    """Same elements in row-major order, new shape."""

    name = "ky.reshape"
    src = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, src: SSAValue, shape: Sequence[int]):
        super().__init__(operands=[src], result_types=[TensorType(element_of(src.type), list(shape))])

    def verify_(self) -> None:
        import math

        a, b = shape_of(self.src.type), shape_of(self.result.type)
        _check(math.prod(a) == math.prod(b), f"{self.name}: cannot reshape {a} to {b}")


@irdl_op_definition
class TransOp(IRDLOperation):
    """Permute dimensions: result dim i is source dim order[i]."""

    name = "ky.trans"
    src = operand_def(TensorType)
    order = prop_def(DenseArrayBase)
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, src: SSAValue, order: Sequence[int]):
        s = shape_of(src.type)
        super().__init__(operands=[src], properties={"order": DenseArrayBase.from_list(i32, list(order))},
                         result_types=[TensorType(element_of(src.type), [s[o] for o in order])])

    def verify_(self) -> None:
        order = list(self.order.get_values())
        s = shape_of(self.src.type)
        _check(sorted(order) == list(range(len(s))), f"{self.name}: order {order} is not a permutation")
        _check(shape_of(self.result.type) == tuple(s[o] for o in order), f"{self.name}: wrong result shape")


# ---------------------------------------------------------------------------------------- memory


def _is_ptr(t: Attribute) -> bool:
    return isinstance(element_of(t), PtrType)


@irdl_op_definition
class AddPtrOp(IRDLOperation):
    """`ptr + offset` elements (offset scaled by the pointee size), scalar or element-wise."""

    name = "ky.addptr"
    ptr = operand_def()
    offset = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, ptr: SSAValue, offset: SSAValue):
        super().__init__(operands=[ptr, offset], result_types=[ptr.type])

    def verify_(self) -> None:
        _check(_is_ptr(self.ptr.type), f"{self.name}: first operand must be a pointer or pointer tile")
        _check(isinstance(element_of(self.offset.type), IntegerType), f"{self.name}: offset must be integer")
        _same_shape(self, self.ptr.type, self.offset.type, self.result.type)
        _check(self.result.type == self.ptr.type, f"{self.name}: result type must equal pointer type")


@irdl_op_definition
class LoadOp(IRDLOperation):
    """Read the elements `ptr` points at. Where `mask` is false nothing is read and the result
    is `other` (or 0 without `other`)."""

    name = "ky.load"
    ptr = operand_def()
    mask = opt_operand_def()
    other = opt_operand_def()
    result = result_def()
    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    def __init__(self, ptr: SSAValue, mask: SSAValue | None = None, other: SSAValue | None = None):
        rt = with_element(ptr.type, element_of(ptr.type).pointee)
        super().__init__(operands=[ptr, [mask] if mask else [], [other] if other else []], result_types=[rt])

    def verify_(self) -> None:
        _check(_is_ptr(self.ptr.type), f"{self.name}: operand must be a pointer or pointer tile")
        _check(self.result.type == with_element(self.ptr.type, element_of(self.ptr.type).pointee),
               f"{self.name}: result must be the pointee type in the pointer's shape")
        if self.mask is not None:
            _check(self.mask.type == with_element(self.ptr.type, i1), f"{self.name}: mask must be i1 of the pointer's shape")
        if self.other is not None:
            _check(self.other.type == self.result.type, f"{self.name}: other must have the result type")


@irdl_op_definition
class StoreOp(IRDLOperation):
    """Write `value` where `ptr` points, only where `mask` is true."""

    name = "ky.store"
    ptr = operand_def()
    value = operand_def()
    mask = opt_operand_def()
    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    def __init__(self, ptr: SSAValue, value: SSAValue, mask: SSAValue | None = None):
        super().__init__(operands=[ptr, value, [mask] if mask else []])

    def verify_(self) -> None:
        _check(_is_ptr(self.ptr.type), f"{self.name}: first operand must be a pointer or pointer tile")
        _check(self.value.type == with_element(self.ptr.type, element_of(self.ptr.type).pointee),
               f"{self.name}: value must be the pointee type in the pointer's shape")
        if self.mask is not None:
            _check(self.mask.type == with_element(self.ptr.type, i1), f"{self.name}: mask must be i1 of the pointer's shape")


@irdl_op_definition
class AtomicRMWOp(IRDLOperation):
    """Atomically `*ptr = kind(*ptr, val)` where mask; returns the old values.
    kind: add, fadd, max, min, umax, umin, and, or, xor, xchg."""

    name = "ky.atomic_rmw"
    kind = prop_def(StringAttr)
    ptr = operand_def()
    val = operand_def()
    mask = opt_operand_def()
    result = result_def()
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    KINDS: ClassVar[tuple[str, ...]] = ("add", "fadd", "max", "min", "umax", "umin", "and", "or", "xor", "xchg")

    def __init__(self, kind: str, ptr: SSAValue, val: SSAValue, mask: SSAValue | None = None):
        super().__init__(operands=[ptr, val, [mask] if mask else []], properties={"kind": StringAttr(kind)},
                         result_types=[val.type])

    def verify_(self) -> None:
        _check(self.kind.data in self.KINDS, f"{self.name}: unknown kind {self.kind.data!r}")
        _check(_is_ptr(self.ptr.type), f"{self.name}: first operand must be a pointer or pointer tile")
        _check(self.val.type == with_element(self.ptr.type, element_of(self.ptr.type).pointee),
               f"{self.name}: value must be the pointee type in the pointer's shape")


@irdl_op_definition
class AtomicCASOp(IRDLOperation):
    """Atomically `old = *ptr; if old == cmp: *ptr = val`; returns old."""

    name = "ky.atomic_cas"
    ptr = operand_def()
    cmp = operand_def()
    val = operand_def()
    result = result_def()

    def __init__(self, ptr: SSAValue, cmp: SSAValue, val: SSAValue):
        super().__init__(operands=[ptr, cmp, val], result_types=[val.type])

    def verify_(self) -> None:
        _check(_is_ptr(self.ptr.type), f"{self.name}: first operand must be a pointer or pointer tile")
        vt = with_element(self.ptr.type, element_of(self.ptr.type).pointee)
        _check(self.cmp.type == vt and self.val.type == vt, f"{self.name}: cmp and val must be the pointee type")


# ----------------------------------------------------------------------------------- computation


@irdl_op_definition
class DotOp(IRDLOperation):
    """Matrix product: `a` (MxK) @ `b` (KxN) + `acc` (MxN), accumulated in acc's element type."""

    name = "ky.dot"
    a = operand_def(TensorType)
    b = operand_def(TensorType)
    acc = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, a: SSAValue, b: SSAValue, acc: SSAValue):
        super().__init__(operands=[a, b, acc], result_types=[acc.type])

    def verify_(self) -> None:
        a, b, c = shape_of(self.a.type), shape_of(self.b.type), shape_of(self.acc.type)
        _check(len(a) == len(b) == len(c) == 2, f"{self.name}: operands must be 2-D tiles")
        _check(a[1] == b[0] and c == (a[0], b[1]), f"{self.name}: shapes {a} @ {b} + {c} do not agree")
        _check(element_of(self.a.type) == element_of(self.b.type), f"{self.name}: a and b element types differ")
        _check(self.result.type == self.acc.type, f"{self.name}: result type must equal acc type")


@irdl_op_definition
class YieldOp(IRDLOperation):
    """Terminator of a `ky.reduce`/`ky.scan` combiner region."""

    name = "ky.yield"
    values = var_operand_def()
    traits = traits_def(IsTerminator(), Pure())

    def __init__(self, *values: SSAValue):
        super().__init__(operands=[list(values)])


class _CombineOp(IRDLOperation):
    srcs = var_operand_def(TensorType)
    axis = prop_def(IntegerAttr)
    res = var_result_def()
    combiner = region_def("single_block")
    traits = traits_def(Pure())

    def _verify_combiner(self, result_shape: tuple[int, ...]) -> None:
        n = len(self.srcs)
        _check(n >= 1 and len(self.res) == n, f"{self.name}: needs as many results as operands")
        shape = shape_of(self.srcs[0].type)
        ax = self.axis.value.data
        _check(0 <= ax < len(shape), f"{self.name}: axis {ax} out of range for shape {shape}")
        _same_shape(self, *[s.type for s in self.srcs])
        elems = [element_of(s.type) for s in self.srcs]
        args = [a.type for a in self.combiner.block.args]
        _check(args == elems + elems, f"{self.name}: combiner takes (acc..., x...) of the element types")
        term = self.combiner.block.last_op
        _check(isinstance(term, YieldOp) and [v.type for v in term.values] == elems,
               f"{self.name}: combiner must end in ky.yield of the element types")
        for r, e in zip(self.res, elems):
            _check(r.type == tile(e, result_shape), f"{self.name}: result type must be {tile(e, result_shape)}")


@irdl_op_definition
class ReduceOp(_CombineOp):
    """Fold the tiles `srcs` along `axis` with the combiner region; that dimension disappears
    (a 1-D tile reduces to a scalar). The combiner must be associative and commutative."""

    name = "ky.reduce"

    def __init__(self, srcs: Sequence[SSAValue], axis: int, combiner: Region):
        shape = list(shape_of(srcs[0].type))
        del shape[axis]
        super().__init__(operands=[list(srcs)], properties={"axis": _i32_prop(axis)}, regions=[combiner],
                         result_types=[[tile(element_of(s.type), shape) for s in srcs]])

    def verify_(self) -> None:
        shape = list(shape_of(self.srcs[0].type))
        if 0 <= self.axis.value.data < len(shape):
            del shape[self.axis.value.data]
        self._verify_combiner(tuple(shape))


@irdl_op_definition
class ScanOp(_CombineOp):
    """Inclusive prefix combine of `srcs` along `axis` (cumsum, cumprod, ...); shape unchanged."""

    name = "ky.scan"

    def __init__(self, srcs: Sequence[SSAValue], axis: int, combiner: Region):
        super().__init__(operands=[list(srcs)], properties={"axis": _i32_prop(axis)}, regions=[combiner],
                         result_types=[[s.type for s in srcs]])

    def verify_(self) -> None:
        self._verify_combiner(shape_of(self.srcs[0].type))


# ------------------------------------------------------------------------------------- debugging


@irdl_op_definition
class PrintOp(IRDLOperation):
    """Print `prefix` and the values, tagged with the program id (debugging; slow)."""

    name = "ky.print"
    prefix = prop_def(StringAttr)
    args = var_operand_def()

    def __init__(self, prefix: str, args: Sequence[SSAValue]):
        super().__init__(operands=[list(args)], properties={"prefix": StringAttr(prefix)})


@irdl_op_definition
class AssertOp(IRDLOperation):
    """Fail the launch with `message` where `cond` is false."""

    name = "ky.assert"
    cond = operand_def()
    message = prop_def(StringAttr)

    def __init__(self, cond: SSAValue, message: str):
        super().__init__(operands=[cond], properties={"message": StringAttr(message)})

    def verify_(self) -> None:
        _check(element_of(self.cond.type) == i1, f"{self.name}: condition must be i1")


Ky = Dialect(
    "ky",
    [ProgramIdOp, NumProgramsOp, MakeRangeOp, SplatOp, BroadcastOp, ExpandDimsOp, ReshapeOp, TransOp,
     AddPtrOp, LoadOp, StoreOp, AtomicRMWOp, AtomicCASOp, DotOp, YieldOp, ReduceOp, ScanOp, PrintOp,
     AssertOp],
    [PtrType],
)
