"""The `kyg` dialect: kaiyuan's graph IR, one op per operator of the library (DESIGN.md §3).

A model is a `func.func @main` whose arguments are the graph inputs and whose results are the
graph outputs; values are builtin `tensor<...>` types (`?` for a dim not known yet). Ops:

    kyg.<OpType>          an ONNX operator (domain ai.onnx), e.g. `kyg.MatMul`, `kyg.Reshape`
    kyg.kaiyuan.<OpType>  one of kaiyuan's own operators (OpDef domain "kaiyuan"), e.g. fused ops
    kyg.weight            `{name = "..."}`: a named tensor whose value lives outside the IR
                          (GraphModel.weights)
    kyg.Constant          `{value = dense<...>}`: a small constant written inline
    kyg.none              `() -> none`: the absent value of an optional input; an op's operand i is
                          its ONNX input i, so an absent input in the middle is a `kyg.none` operand
                          (trailing absent inputs are simply left out)

Operator ops are not listed in Python: the op class for a name is made on demand for every
operator that `kaiyuan.ops.schema` has registered (any opset), so a new OpDef is a new op with
no change here. Verification checks operand and result counts, required operands and attribute
names against the OpDef for the module's opset (`kyg.opset` on the module). Attributes are the
ONNX node's own (defaults are not filled in: `OpDef.resolve_attrs` does that when needed). The
ONNX node name is the op's location, `loc("node_name")`, so errors can name the node.
"""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    ModuleOp,
    NameLoc,
    NoneAttr,
    NoneType,
    StringAttr,
    TensorType,
    UnrankedTensorType,
)
from xdsl.ir import Attribute, Dialect, Operation, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    attr_def,
    irdl_op_definition,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from ..ops import schema
from ..runtime.errors import KaiyuanError
from .attributes import dense, from_attr, to_attr

VERSION = "0.1"
KAIYUAN_DOMAIN = "kaiyuan"
KAIYUAN_OPSET = 1        # kaiyuan's own operators are looked up at this version


class KygOp(IRDLOperation):
    """Base of every operator op: any operands and results, attributes as the ONNX node had them."""

    name = "kyg.op"
    ins = var_operand_def()
    outs = var_result_def()
    traits = traits_def(Pure())

    def verify_(self) -> None:
        _verify_against_opdef(self)


@irdl_op_definition
class WeightOp(IRDLOperation):
    """A named weight: `%w = "kyg.weight"() {name = "fc.weight"} : () -> tensor<4x8xf32>`."""

    name = "kyg.weight"
    weight_name = attr_def(StringAttr, attr_name="name")
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def verify_(self) -> None:
        if not self.weight_name.data:
            raise VerifyException("kyg.weight: name must not be empty")


@irdl_op_definition
class ConstantOp(IRDLOperation):
    """A small inline constant: `%c = "kyg.Constant"() {value = dense<[1, -1]> : tensor<2xi64>}`."""

    name = "kyg.Constant"
    value = attr_def(DenseIntOrFPElementsAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def verify_(self) -> None:
        if self.value.get_type() != self.result.type:
            raise VerifyException(f"kyg.Constant: value type {self.value.get_type()} differs from result type "
                                  f"{self.result.type}")


@irdl_op_definition
class NoneOp(IRDLOperation):
    """The absent value of an optional input: `%n = "kyg.none"() : () -> none`."""

    name = "kyg.none"
    result = result_def(NoneType)
    traits = traits_def(Pure())


Kyg = Dialect("kyg", [WeightOp, ConstantOp, NoneOp], [])

# ---------------------------------------------------------------- operator ops, made on demand

_OP_CLASSES: dict[str, type[KygOp]] = {}


def op_name(op_type: str, domain: str = "") -> str:
    """The IR name of an operator: `kyg.MatMul`, `kyg.kaiyuan.FusedGemm`."""
    domain = "" if domain == "ai.onnx" else domain
    return f"kyg.{domain}.{op_type}" if domain else f"kyg.{op_type}"


def split_name(name: str) -> tuple[str, str]:
    """(domain, op_type) of an IR name: `kyg.kaiyuan.X` → ("kaiyuan", "X"), `kyg.Add` → ("", "Add")."""
    rest = name.removeprefix("kyg.")
    domain, _, op_type = rest.rpartition(".")
    return domain, op_type


def op_class(name: str) -> type[KygOp]:
    """The op class for an operator's IR name (made once, then reused)."""
    if name not in _OP_CLASSES:
        cls = type("Kyg_" + name.removeprefix("kyg.").replace(".", "_"), (KygOp,), {"name": name, "__doc__": KygOp.__doc__})
        _OP_CLASSES[name] = irdl_op_definition(cls)
    return _OP_CLASSES[name]


def _is_registered(name: str) -> bool:
    domain, op_type = split_name(name)
    return any(d.op_type == op_type and d.domain == domain for d in schema.registered())


class GraphContext(Context):
    """An xDSL context that knows builtin, func and kyg, and makes a `kyg.<OpType>` op class on
    demand for each operator registered in `kaiyuan.ops.schema` (unknown names stay unknown)."""

    def __init__(self):
        super().__init__()
        for d in (builtin.Builtin, func.Func, Kyg):
            self.load_dialect(d)

    def get_optional_op(self, name, *, dialect_stack=()):
        found = super().get_optional_op(name, dialect_stack=dialect_stack)
        if found is None and name.startswith("kyg.") and _is_registered(name):
            found = op_class(name)
            self._loaded_ops[name] = found  # this context was made for one parse: the registry holds still
        return found


# ----------------------------------------------------------------------------------- helpers


def op_type(op: Operation) -> tuple[str, str]:
    """(domain, op_type) of a kyg op: ("", "MatMul"), ("kaiyuan", "FusedGemm"), ("", "Constant");
    the bookkeeping ops are ("kyg", "weight") and ("kyg", "none")."""
    if op.name in (WeightOp.name, NoneOp.name):
        return "kyg", op.name.removeprefix("kyg.")
    return split_name(op.name)


def attrs(op: Operation) -> dict:
    """The op's attributes as plain Python values (int, float, str, list, np.ndarray)."""
    return {k: from_attr(v) for k, v in op.attributes.items()}


def node_name(op: Operation) -> str:
    """The ONNX node name recorded as the op's location (`loc("name")`), or the op's IR name."""
    loc = op.location
    if isinstance(loc, NameLoc):
        return loc.desc.data
    return op.name


def where(op: Operation) -> str:
    """A prefix for messages about an op: `node 'attn/MatMul' (MatMul): `."""
    return f"node '{node_name(op)}' ({op_type(op)[1]}): "


def make_op(op_type: str, operands, result_types, attrs: dict | None = None, node_name: str | None = None,
            domain: str = "") -> Operation:
    """A new (unattached) op: an operator, or `Constant` (attrs {"value": array}). Operands are SSA
    values (a `kyg.none` result for an absent optional input); attrs are plain Python values."""
    attributes = {k: to_attr(v) for k, v in (attrs or {}).items()}
    name = op_name(op_type, domain)
    cls = ConstantOp if name == ConstantOp.name else op_class(name)
    loc = NameLoc(StringAttr(node_name), NoneAttr()) if node_name else None
    op = cls.create(operands=list(operands), result_types=list(result_types), attributes=attributes)
    if loc is not None:
        op.location = loc
    return op


def make_weight(name: str, type_: Attribute) -> WeightOp:
    return WeightOp.create(result_types=[type_], attributes={"name": StringAttr(name)})


def make_constant(array, node_name: str | None = None) -> ConstantOp:
    value = dense(array)
    op = ConstantOp.create(result_types=[value.get_type()], attributes={"value": value})
    if node_name:
        op.location = NameLoc(StringAttr(node_name), NoneAttr())
    return op


def module_opset(op: Operation) -> int | None:
    """The ai.onnx opset recorded on the module that holds `op` (`kyg.opset`), if any."""
    while op is not None and not isinstance(op, ModuleOp):
        op = op.parent_op()
    if op is None:
        return None
    attr = op.attributes.get("kyg.opset")
    return attr.value.data if isinstance(attr, IntegerAttr) else None


def opdef_of(op: Operation, opset: int | None = None) -> schema.OpDef:
    """The OpDef an operator op runs with (UnsupportedError naming the node if there is none)."""
    domain, name = op_type(op)
    if domain == KAIYUAN_DOMAIN:
        version = KAIYUAN_OPSET
    else:
        version = opset if opset is not None else module_opset(op)
        if version is None:
            raise VerifyException(f"{op.name}: the module has no kyg.opset attribute")
    return schema.lookup(name, version, domain, where=where(op))


def is_value_type(t: Attribute) -> bool:
    return isinstance(t, (TensorType, UnrankedTensorType, NoneType))


def _verify_against_opdef(op: KygOp) -> None:
    try:
        d = opdef_of(op)
    except KaiyuanError as e:
        raise VerifyException(e.message) from None
    lo, hi = d.inputs
    n = len(op.operands)
    if not lo <= n <= hi:
        raise VerifyException(f"{op.name}: {n} operands; {op_type(op)[1]} takes {count_range(lo, hi)}")
    lo, hi = d.outputs
    n = len(op.results)
    if not lo <= n <= hi:
        raise VerifyException(f"{op.name}: {n} results; {op_type(op)[1]} has {count_range(lo, hi)}")
    for i, v in enumerate(op.operands):
        if not is_value_type(v.type):
            raise VerifyException(f"{op.name}: operand {i} has type {v.type}; operands are tensors or none")
        if i < d.inputs[0] and isinstance(v.type, NoneType):
            raise VerifyException(f"{op.name}: operand {i} is required but is none")
    for i, r in enumerate(op.results):
        if not isinstance(r.type, (TensorType, UnrankedTensorType)):
            raise VerifyException(f"{op.name}: result {i} has type {r.type}; results are tensors")
    try:
        d.resolve_attrs(attrs(op), where(op).removesuffix(": "))
    except KaiyuanError as e:
        raise VerifyException(e.message) from None


def count_range(lo: int, hi: int) -> str:
    """`1`, `2 to 3` or `at least 1`: an OpDef's (min, max) count in words."""
    return str(lo) if lo == hi else f"{lo} to {hi}" if hi < 10**6 else f"at least {lo}"


def is_absent(v: SSAValue) -> bool:
    """Whether an operand is the absent value of an optional input."""
    return isinstance(v.type, NoneType)
