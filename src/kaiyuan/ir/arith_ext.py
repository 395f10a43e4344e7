"""Shape-aware versions of upstream `arith.cmpi`, `arith.cmpf` and `arith.select`, plus `arith.remf`.

MLIR's arith compares and selects element-wise on tensors (`arith.cmpi slt, %a, %b :
tensor<128xi32>` yields `tensor<128xi1>`), but xDSL's definitions of these three ops only allow
a scalar `i1`. We register replacements under the same op names that reuse xDSL's parsers and
printers, so the text stays upstream MLIR and tiles compare and select as MLIR defines.
"""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects import arith
from xdsl.dialects.builtin import IntegerAttr, TensorType, i1
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


_REPLACED = {"arith.cmpi": CmpiOp, "arith.cmpf": CmpfOp, "arith.select": SelectOp}

Arith = Dialect(
    "arith",
    [_REPLACED.get(op.name, op) for op in arith.Arith.operations] + [RemFOp],
    list(arith.Arith.attributes),
)
