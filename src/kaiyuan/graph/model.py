"""`GraphModel`: a graph IR module plus the weights it names, and what its inputs and outputs are.

The module holds one `func.func @main`. Its arguments are the graph inputs and its results the
graph outputs; their ONNX names and symbolic dims live in argument/result attributes:

    func.func @main(%ids: tensor<?x?xi64> {kyg.name = "input_ids", kyg.dims = ["batch", "seq"]})
        -> (tensor<?x?x8xf32> {kyg.name = "out", kyg.dims = ["batch", "seq", ""]})

`kyg.dims` has one string per dim: the ONNX dim_param of a `?` dim, "" otherwise (written only when
some dim is symbolic). The module records `kyg.opset` (ai.onnx opset) and `kyg.version` (IR version).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, IntegerAttr, ModuleOp, StringAttr, i64
from xdsl.ir import Block, Region, SSAValue

from ..runtime.errors import IRVerifyError
from .attributes import tensor_type, type_dtype, type_shape
from .dialect import VERSION, WeightOp
from .text import parse_ir, print_ir, verify_ir


@dataclass(frozen=True)
class ValueInfo:
    """A graph input or output: its name, numpy dtype, and shape (ints, str for a symbolic dim,
    None for an unknown one; the whole shape is None for a tensor of unknown rank)."""

    name: str
    dtype: np.dtype
    shape: tuple | None


class GraphModel:
    """A graph IR module and its weights (name → numpy array; never written into the IR)."""

    def __init__(self, module: ModuleOp, weights: dict | None = None):
        self.module = module
        self.weights: dict[str, np.ndarray] = dict(weights or {})

    # ------------------------------------------------------------------------- structure

    @property
    def main(self) -> func.FuncOp:
        for op in self.module.ops:
            if isinstance(op, func.FuncOp) and op.sym_name.data == "main":
                return op
        raise IRVerifyError("the module has no func.func @main", hint="a graph model is one func.func @main")

    @property
    def block(self) -> Block:
        return self.main.body.block

    @property
    def opset(self) -> int:
        attr = self.module.attributes.get("kyg.opset")
        if not isinstance(attr, IntegerAttr):
            raise IRVerifyError("the module has no kyg.opset attribute", hint="add {kyg.opset = 17 : i64}")
        return attr.value.data

    @property
    def inputs(self) -> list[ValueInfo]:
        attrs = self.main.arg_attrs.data if self.main.arg_attrs else ()
        return [_value_info(a.type, d, i, "input") for i, (a, d) in enumerate(zip(self.block.args, _pad(attrs, len(self.block.args))))]

    @property
    def outputs(self) -> list[ValueInfo]:
        types = self.main.function_type.outputs.data
        attrs = self.main.res_attrs.data if self.main.res_attrs else ()
        return [_value_info(t, d, i, "output") for i, (t, d) in enumerate(zip(types, _pad(attrs, len(types))))]

    def returned(self) -> list[SSAValue]:
        """The values the graph returns, in output order."""
        return list(self.block.last_op.operands)

    # ------------------------------------------------------------------------------ text

    def text(self) -> str:
        """The module as MLIR text (deterministic; `from_text` reads it back)."""
        return print_ir(self.module)

    @classmethod
    def from_text(cls, text: str, weights: dict | None = None, filename: str = "<kyg>") -> "GraphModel":
        """Parse IR text; `weights` must hold every `kyg.weight` the text names, with its type."""
        model = cls(parse_ir(text, filename), weights)
        version = model.module.attributes.get("kyg.version")
        if isinstance(version, StringAttr) and version.data != VERSION:
            raise IRVerifyError(f"the IR was written with kyg version {version.data}; this kaiyuan reads {VERSION}",
                                loc=filename, hint="re-export the model with this version of kaiyuan")
        model.main, model.opset  # noqa: B018 - raise early if either is missing
        model.check_weights()
        return model

    def verify(self) -> None:
        """Check the IR against each op's OpDef and the weights against the IR (IRVerifyError)."""
        verify_ir(self.module)
        self.check_weights()

    def check_weights(self) -> None:
        """Every `kyg.weight` names an array in `weights` of its type (IRVerifyError otherwise)."""
        for op in self.block.ops:
            if not isinstance(op, WeightOp):
                continue
            name = op.weight_name.data
            if name not in self.weights:
                raise IRVerifyError(f"kyg.weight: no weight named '{name}'", hint="pass the weights with the IR")
            w = self.weights[name]
            if np.dtype(w.dtype) != type_dtype(op.result.type) or tuple(w.shape) != type_shape(op.result.type):
                raise IRVerifyError(f"kyg.weight: weight '{name}' is {w.dtype}{list(w.shape)}, the IR says "
                                    f"{op.result.type}")

    def copy(self) -> "GraphModel":
        """A copy whose IR can be changed freely (weight arrays are shared: never write into them)."""
        return GraphModel(self.module.clone(), dict(self.weights))

    def __repr__(self) -> str:
        return f"GraphModel(opset={self.opset}, inputs={self.inputs}, outputs={self.outputs})"


# --------------------------------------------------------------------------------- building


def new_model(opset: int, inputs: list[ValueInfo]) -> GraphModel:
    """A model whose @main has the given inputs and an empty body (finish it with `set_outputs`)."""
    types = [tensor_type(v.dtype, v.shape) for v in inputs]
    block = Block(arg_types=types)
    for arg, v in zip(block.args, inputs):
        arg.name_hint = value_name(v.name)
    main = func.FuncOp("main", (types, []), Region(block),
                       arg_attrs=ArrayAttr([_io_attrs(v.name, v.shape) for v in inputs]))
    module = ModuleOp([main], attributes={"kyg.version": StringAttr(VERSION), "kyg.opset": IntegerAttr(opset, i64)})
    return GraphModel(module)


def set_outputs(model: GraphModel, outputs: list[tuple[str, SSAValue, tuple | None]]) -> None:
    """End @main with `func.return` of (name, value, declared shape) per graph output; the declared
    shape only supplies the names of symbolic dims."""
    block = model.block
    block.add_op(func.ReturnOp(*[v for _, v, _ in outputs]))
    model.main.res_attrs = ArrayAttr([_io_attrs(n, shape) for n, _, shape in outputs])
    refresh_signature(model)


def refresh_signature(model: GraphModel) -> None:
    """Make @main's function type match its arguments and returned values again, after a pass
    changed their types."""
    block = model.block
    outs = [v.type for v in block.last_op.operands]
    model.main.function_type = func.FunctionType.from_lists([a.type for a in block.args], outs)


def value_name(name: str) -> str | None:
    """An SSA name hint for an ONNX tensor name (only cosmetic: it makes dumps readable)."""
    cleaned = "".join(c if c.isalnum() and c.isascii() or c in "_$.-" else "_" for c in name)
    if not cleaned:
        return None
    return cleaned if cleaned[0].isalpha() or cleaned[0] == "_" else "v" + cleaned


def _io_attrs(name: str, shape) -> DictionaryAttr:
    attrs = {"kyg.name": StringAttr(name)}
    if shape is not None and any(isinstance(d, str) for d in shape):
        attrs["kyg.dims"] = ArrayAttr([StringAttr(d if isinstance(d, str) else "") for d in shape])
    return DictionaryAttr(attrs)


def _pad(attrs, n: int) -> list:
    return list(attrs) + [DictionaryAttr({})] * (n - len(attrs))


def _value_info(t, attrs: DictionaryAttr, i: int, kind: str) -> ValueInfo:
    d = attrs.data
    name = d["kyg.name"].data if "kyg.name" in d else f"{kind}{i}"
    shape = type_shape(t)
    if shape is not None and "kyg.dims" in d:
        syms = [s.data for s in d["kyg.dims"].data]
        shape = tuple(s if dim is None and s else dim for dim, s in zip(shape, syms))
    return ValueInfo(name, type_dtype(t), shape)
