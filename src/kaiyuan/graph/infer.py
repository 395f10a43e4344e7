"""Shape and dtype inference: specialise a model to concrete input shapes.

`specialise(model, shapes)` returns a new model in which every value has a static type. It
binds the graph inputs to the given shapes (checking them against the declared ones: rank, fixed
dims, one value per symbolic dim name), then walks the ops in order and sets each op's result
types from its `OpDef.infer`. Inference and constant folding are interleaved: right after an op's
types are known, the op is folded if its inputs are all constant (or, for Shape/Size, if its
input's shape is static), so shape subgraphs such as Shape → Gather → Concat → Reshape become
constants by the time Reshape needs its shape. An input listed in an OpDef's `value_inputs` that
is still not constant is an UnsupportedError naming the node: the planner needs it at plan time.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr

from ..ops.schema import OpDef, TensorType
from ..runtime.errors import ArgumentError, KaiyuanError, UnsupportedError
from .attributes import tensor_type, type_dtype, type_shape
from .dialect import KygOp, attrs, is_absent, node_name, op_type, opdef_of, where
from .errors import with_node
from .model import GraphModel, ValueInfo, refresh_signature
from .passes.fold import try_fold
from .rewrite import constant_value, insert_constant, prune_weights, retype


def specialise(model: GraphModel, shapes: dict | None = None, values: dict | None = None) -> GraphModel:
    """A copy of `model` with every type static. `shapes` maps input names to shapes (tuples of
    ints) or to arrays (whose dtype is then checked too); inputs whose declared shape is already
    static may be left out. `values` maps input names to arrays that become constants (inputs
    that decide shapes: a Reshape's shape fed as a graph input; see `plan_time_inputs`)."""
    model = model.copy()
    _bind_inputs(model, dict(shapes or {}))
    _bind_values(model, dict(values or {}))
    opset = model.opset
    for op in list(model.block.ops):
        if isinstance(op, KygOp):
            infer_op(model, op, opset)
            try_fold(model, op, opset)
    refresh_signature(model)
    _drop_symbolic_names(model.main)
    prune_weights(model)
    return model


def value_type(v) -> TensorType | None:
    """The schema TensorType of an SSA value (None for an absent optional input)."""
    if is_absent(v):
        return None
    return TensorType(type_dtype(v.type), type_shape(v.type))


def infer_op(model: GraphModel, op: KygOp, opset: int) -> None:
    """Set op's result types from its OpDef (its operands must have static types)."""
    d = opdef_of(op, opset)
    types = [value_type(v) for v in op.operands]
    for i, t in enumerate(types):
        if t is not None and (t.shape is None or not t.static):
            raise UnsupportedError(f"{where(op)}input {i} has no static shape after inference",
                                   hint="a kaiyuan bug: report it with the model")
    check_dtype(d, types, where(op))
    consts = [_value_input(model, op, i) if i in d.value_inputs else None for i in range(len(types))]
    with with_node(op):
        out = list(d.infer(types, d.resolve_attrs(attrs(op), where(op).removesuffix(": ")), consts))
    if len(out) < len(op.results):
        raise UnsupportedError(f"{where(op)}the OpDef infers {len(out)} outputs, the node has {len(op.results)}")
    for r, t in zip(list(op.results), out):
        retype(r, tensor_type(t.dtype, tuple(int(d) for d in t.shape)))


def check_dtype(d: OpDef, types: list, where_: str) -> None:
    """UnsupportedError (prefixed by `where_`, the node) when input 0's dtype is not one the
    OpDef accepts."""
    if d.dtypes is None or not types or types[0] is None:
        return
    dt = np.dtype(types[0].dtype).name
    if dt not in d.dtypes:
        raise UnsupportedError(f"{where_}{d.op_type} on {dt} inputs is not supported",
                               hint=f"{d.op_type} supports: {', '.join(d.dtypes)}")


def _value_input(model: GraphModel, op: KygOp, i: int):
    v = op.operands[i]
    if is_absent(v):
        return None
    c = constant_value(model, v)
    if c is None:
        src = node_name(v.owner) if isinstance(v.owner, KygOp) else "a graph input"
        raise UnsupportedError(f"{where(op)}input {i} must be known when the model is planned, but it is computed "
                               f"at run time (by {src})",
                               hint="kaiyuan plans memory ahead of time; export the model with this value constant")
    return c


# ----------------------------------------------------------------------------- input binding

# ops whose result depends on their input's shape only, never on its values
_SHAPE_ONLY = {"Shape", "Size"}


def plan_time_inputs(model: GraphModel) -> set:
    """Names of the graph inputs whose values decide shapes: those that reach an OpDef's
    `value_inputs` operand (through any ops but Shape/Size, which read shapes only). A session
    plans once per set of their values, as it plans once per set of input shapes."""
    names = {arg: info.name for arg, info in zip(model.block.args, model.inputs)}
    found: set = set()
    seen: set = set()

    def walk(v) -> None:
        if v in seen:
            return
        seen.add(v)
        if v in names:
            found.add(names[v])
        elif isinstance(v.owner, KygOp) and op_type(v.owner)[1] not in _SHAPE_ONLY:
            for u in v.owner.operands:
                walk(u)

    for op in model.block.ops:
        if isinstance(op, KygOp):
            try:
                d = opdef_of(op, model.opset)
            except KaiyuanError:
                continue
            for i in d.value_inputs:
                if i < len(op.operands) and not is_absent(op.operands[i]):
                    walk(op.operands[i])
    return found


def _bind_values(model: GraphModel, values: dict) -> None:
    """Replace the uses of the inputs named in `values` by constants of those values."""
    if not values:
        return
    first = next(iter(model.block.ops))
    for arg, info in zip(model.block.args, model.inputs):
        if info.name in values:
            c = insert_constant(model, np.asarray(values[info.name], info.dtype), first, info.name)
            arg.replace_all_uses_with(c)



def _bind_inputs(model: GraphModel, shapes: dict) -> None:
    infos = model.inputs
    known = {v.name for v in infos}
    unknown = sorted(set(shapes) - known)
    if unknown:
        raise ArgumentError(f"no graph input named {', '.join(map(repr, unknown))}",
                            hint=f"inputs: {', '.join(sorted(known))}")
    symbols: dict[str, tuple[int, str]] = {}
    for arg, info in zip(model.block.args, infos):
        dims, dtype = _given(info, shapes.get(info.name))
        _check_shape(info, dims, symbols)
        retype(arg, tensor_type(dtype, dims))


def _given(info: ValueInfo, given) -> tuple[tuple, np.dtype]:
    if given is None:
        if info.shape is None or not all(isinstance(d, int) for d in info.shape):
            raise ArgumentError(f"graph input '{info.name}' has dynamic shape {_show(info.shape)}: give its shape",
                                hint=f"specialise(model, {{'{info.name}': (...)}})")
        return tuple(info.shape), info.dtype
    if hasattr(given, "shape") and hasattr(given, "dtype"):
        dtype = np.dtype(given.dtype)
        if dtype != info.dtype:
            raise ArgumentError(f"graph input '{info.name}' is {info.dtype}, got {dtype}",
                                hint=f"convert it with .astype(np.{info.dtype.name})")
        given = given.shape
    try:
        dims = tuple(int(d) for d in given)
    except (TypeError, ValueError):
        raise ArgumentError(f"graph input '{info.name}': shape {given!r} is not a tuple of ints") from None
    if any(d < 0 for d in dims):
        raise ArgumentError(f"graph input '{info.name}': shape {dims} has a negative dim")
    return dims, info.dtype


def _check_shape(info: ValueInfo, dims: tuple, symbols: dict) -> None:
    declared = info.shape
    if declared is None:
        return
    if len(dims) != len(declared):
        raise ArgumentError(f"graph input '{info.name}' has rank {len(declared)} {_show(declared)}, got shape {dims}")
    for i, (want, got) in enumerate(zip(declared, dims)):
        if isinstance(want, int) and want != got:
            raise ArgumentError(f"graph input '{info.name}': dim {i} must be {want}, got {got} (shape {dims})",
                                hint=f"declared shape: {_show(declared)}")
        if isinstance(want, str):
            seen = symbols.setdefault(want, (got, info.name))
            if seen[0] != got:
                raise ArgumentError(f"graph input '{info.name}': dim '{want}' is {got}, but it is {seen[0]} in "
                                    f"input '{seen[1]}'", hint="inputs that share a dim name must agree on its size")


def _show(shape) -> str:
    if shape is None:
        return "(unknown rank)"
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _drop_symbolic_names(main: func.FuncOp) -> None:
    """Every dim is static now: keep only the names of inputs and outputs."""
    for field in ("arg_attrs", "res_attrs"):
        attrs_ = getattr(main, field)
        if attrs_ is not None:
            setattr(main, field, ArrayAttr([DictionaryAttr({k: v for k, v in d.data.items() if k != "kyg.dims"})
                                            for d in attrs_.data]))
