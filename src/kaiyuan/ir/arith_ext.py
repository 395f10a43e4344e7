"""Shape-aware versions of upstream `arith.cmpi`, `arith.cmpf`, `arith.select` and the integer
<->float and integer-width casts, plus `arith.remf`.

MLIR's arith compares and selects element-wise on tensors (`arith.cmpi slt, %a, %b :
tensor<128xi32>` yields `tensor<128xi1>`), but xDSL's definitions of these three ops only allow
a scalar `i1`. We register replacements under the same op names that reuse xDSL's parsers and
printers, so the text stays upstream MLIR and tiles compare and select as MLIR defines.
"""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects import arith
from xdsl.dialects.builtin import IntegerAttr, IntegerType, TensorType, i1
from xdsl.ir import Attribute, Dialect, SSAValue
from xdsl.irdl import AnyAttr, VarConstraint, irdl_op_definition, operand_def, prop_def, result_def, traits_def
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

CMPI_PREDICATES = ["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"]
CMPF_PREDICATES = ["false", "oeq", "ogt", "oge", "olt", "ole", "one", "ord",
                   "ueq", "ugt", "uge", "ult", "ule", "une", "uno", "true"]


def i1_like(t: Attribute) -> Attribute:
    """i1 in the shape of `t` (scalar or tile)."""
    return TensorType(i1, t.get_shape()) if isinstance(t, TensorType) else i1


class _Compare(arith.ComparisonOperation):
    PREDICATES: ClassVar[list[str]] = []
    predicate = prop_def(IntegerAttr)
    result = result_def(AnyAttr())
    traits = traits_def(Pure())

    def __init__(self, operand1, operand2, arg, fastmath=None):
        a, b = SSAValue.get(operand1), SSAValue.get(operand2)
        if isinstance(arg, str):
            arg = self.PREDICATES.index(arg)
        super().__init__(operands=[a, b], result_types=[i1_like(a.type)],
                         properties={"predicate": IntegerAttr(arg, 64)})

    @property
    def predicate_name(self) -> str:
        return self.PREDICATES[self.predicate.value.data]

    def verify_(self) -> None:
        if self.lhs.type != self.rhs.type:
            raise VerifyException(f"{self.name}: operand types differ")
        if self.result.type != i1_like(self.lhs.type):
            raise VerifyException(f"{self.name}: result must be {i1_like(self.lhs.type)}")


@irdl_op_definition
class CmpiOp(_Compare):
    name = "arith.cmpi"
    PREDICATES: ClassVar[list[str]] = CMPI_PREDICATES
    lhs = operand_def(arith.signlessIntegerLike)
    rhs = operand_def(arith.signlessIntegerLike)
    parse = classmethod(arith.CmpiOp.parse.__func__)
    print = arith.CmpiOp.print


@irdl_op_definition
class CmpfOp(_Compare):
    name = "arith.cmpf"
    PREDICATES: ClassVar[list[str]] = CMPF_PREDICATES
    lhs = operand_def(arith.floatingPointLike)
    rhs = operand_def(arith.floatingPointLike)

    @classmethod
    def parse(cls, parser):
        arg = parser.parse_identifier()
        parser.parse_punctuation(",")
        a = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        b = parser.parse_unresolved_operand()
        parser.parse_punctuation(":")
        t = parser.parse_type()
        a, b = parser.resolve_operands([a, b], [t, t], parser.pos)
        return cls(a, b, arg)

    def print(self, printer) -> None:
        printer.print_string(f" {self.predicate_name}, ")
        printer.print_operand(self.lhs)
        printer.print_string(", ")
        printer.print_operand(self.rhs)
        printer.print_string(" : ")
        printer.print_attribute(self.lhs.type)


@irdl_op_definition
class SelectOp(arith.IRDLOperation):
    """`cond ? lhs : rhs`, element-wise when cond is a tile (MLIR's arith.select)."""

    name = "arith.select"
    _T: ClassVar = VarConstraint("_T", AnyAttr())
    cond = operand_def(AnyAttr())
    lhs = operand_def(_T)
    rhs = operand_def(_T)
    result = result_def(_T)
    traits = traits_def(Pure())
    assembly_format = "$cond `,` $lhs `,` $rhs attr-dict `:` type($cond) `,` type($result)"

    def __init__(self, cond, lhs, rhs):
        lhs = SSAValue.get(lhs)
        super().__init__(operands=[cond, lhs, rhs], result_types=[lhs.type])

    def verify_(self) -> None:
        c = self.cond.type
        if not (c == i1 or c == i1_like(self.result.type)):
            raise VerifyException(f"arith.select: condition {c} must be i1 or i1 of the result's shape")


@irdl_op_definition
class RemFOp(arith.FloatingPointLikeBinaryOperation):
    """MLIR's `arith.remf` (C fmod: the remainder has the sign of the dividend); absent in xDSL."""

    name = "arith.remf"


def _elem(t: Attribute) -> Attribute:
    return t.element_type if isinstance(t, TensorType) else t


def _shape(t: Attribute) -> tuple[int, ...]:
    return tuple(t.get_shape()) if isinstance(t, TensorType) else ()


class _Cast(arith.IRDLOperation):
    """An element-wise conversion on a scalar or a tile (xDSL's versions take scalars only)."""

    SRC: ClassVar[str] = "int"  # element kind of the input: "int" | "float"
    DST: ClassVar[str] = "float"
    WIDTH: ClassVar[str] = ""  # "wider" | "narrower" | "" (no rule)
    input = operand_def(AnyAttr())
    result = result_def(AnyAttr())
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `to` type($result)"

    def __init__(self, op, target_type):
        op = SSAValue.get(op)
        if isinstance(op.type, TensorType) and not isinstance(target_type, TensorType):
            target_type = TensorType(target_type, op.type.get_shape())
        super().__init__(operands=[op], result_types=[target_type])

    def verify_(self) -> None:
        a, b = _elem(self.input.type), _elem(self.result.type)
        kind = {"int": IntegerType, "float": arith.AnyFloat}
        if _shape(self.input.type) != _shape(self.result.type):
            raise VerifyException(f"{self.name}: input and result shapes differ")
        if not isinstance(a, kind[self.SRC]) or not isinstance(b, kind[self.DST]):
            raise VerifyException(f"{self.name}: converts {self.SRC} to {self.DST}, not {a} to {b}")
        if self.WIDTH == "wider" and not b.width.data > a.width.data:
            raise VerifyException(f"{self.name}: the result must be wider than the input")
        if self.WIDTH == "narrower" and not b.width.data < a.width.data:
            raise VerifyException(f"{self.name}: the result must be narrower than the input")


def _cast_op(op_name: str, src: str, dst: str, width: str = ""):
    cls = type(op_name.split(".")[1].title() + "Op", (_Cast,),
               {"name": op_name, "SRC": src, "DST": dst, "WIDTH": width, "__module__": __name__,
                "__annotations__": {"SRC": ClassVar[str], "DST": ClassVar[str], "WIDTH": ClassVar[str]}})
    return irdl_op_definition(cls)


SIToFPOp = _cast_op("arith.sitofp", "int", "float")
UIToFPOp = _cast_op("arith.uitofp", "int", "float")
FPToSIOp = _cast_op("arith.fptosi", "float", "int")
FPToUIOp = _cast_op("arith.fptoui", "float", "int")
ExtSIOp = _cast_op("arith.extsi", "int", "int", "wider")
ExtUIOp = _cast_op("arith.extui", "int", "int", "wider")
TruncIOp = _cast_op("arith.trunci", "int", "int", "narrower")

_REPLACED = {"arith.cmpi": CmpiOp, "arith.cmpf": CmpfOp, "arith.select": SelectOp,
             **{c.name: c for c in (SIToFPOp, UIToFPOp, FPToSIOp, FPToUIOp, ExtSIOp, ExtUIOp, TruncIOp)}}

Arith = Dialect(
    "arith",
    [_REPLACED.get(op.name, op) for op in arith.Arith.operations] + [RemFOp],
    list(arith.Arith.attributes),
)
