"""ONNX → graph IR: `import_onnx(path or ModelProto) -> GraphModel`.

Stages:
  1. load     read the file (external data included); a file that is not ONNX or is truncated is
              a ModelError naming it. Model-local functions are inlined.
  2. opset    ai.onnx opsets 13-21 are read; others are UnsupportedError (convert the model with
              onnx.version_converter first).
  3. types    a node whose inputs are static (and whose value inputs are constant) is typed by
              its OpDef now; other values take onnx's shape inference (dtype and a possibly
              symbolic shape). These are informative: `specialise` recomputes every type.
  4. nodes    in topological order, each node is checked against its OpDef now, so an unsupported
              op, attribute, input count or dtype fails at load time naming the node, the op and
              the opset; If/Loop/Scan and any subgraph attribute are UnsupportedError. Constant
              nodes and initialisers become constants (inline when small, else weights keyed by
              the ONNX name). An empty input name (absent optional input) is a `kyg.none` operand.
  5. outputs  func.return of the graph outputs, with their names and symbolic dims.

Initialisers that are also graph inputs (overridable defaults) are treated as constants and are
not inputs, as onnxruntime's `get_inputs` does. Nodes without a name are called `<OpType>_<index>`.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnx.inliner
from google.protobuf.message import DecodeError
from onnx import helper
from xdsl.dialects.builtin import NoneType

from ..ops import schema
from ..runtime.errors import UnsupportedError
from .attributes import element_type, tensor_type

NUM_OUTPUTS = "_num_outputs"  # the attribute an OpDef declares to be told its node's output count
from .dialect import KAIYUAN_DOMAIN, KAIYUAN_OPSET, NoneOp, count_range, make_constant, make_op, make_weight
from .errors import ModelError, with_prefix
from .infer import check_dtype, value_type
from .model import GraphModel, ValueInfo, new_model, set_outputs, value_name
from .onnx_attrs import from_onnx, tensor_array
from .rewrite import inline

OPSETS = range(13, 22)
CONTROL_FLOW = frozenset({"If", "Loop", "Scan", "SequenceMap"})


def import_onnx(model) -> GraphModel:
    """Import an ONNX model (a path or an `onnx.ModelProto`) into the graph IR (see the module
    docstring)."""
    proto, source = _load(model)
    opset, versions = _opset(proto, source)
    graph = proto.graph
    known = _inferred_types(proto)
    consts = {t.name: tensor_array(t, f"{source}: initializer ") for t in graph.initializer}
    if graph.sparse_initializer:
        raise UnsupportedError(f"{source}: sparse initializers are not supported")
    inputs = [_input_info(v, source) for v in graph.input if v.name not in consts]
    builder = _Builder(new_model(opset, inputs), consts, known, source, versions)
    for node_index, node in _topological(graph, set(consts) | {v.name for v in inputs}, source):
        builder.add_node(node, node_index)
    builder.finish(graph.output)
    return builder.model


# ------------------------------------------------------------------------------------- load


def _load(model) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        proto, source = model, model.graph.name or "<onnx model>"
    elif isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        if not os.path.isfile(source):
            raise ModelError(f"{source}: no such model file")
        try:
            proto = onnx.load(source, load_external_data=True)
        except (DecodeError, ValueError, RuntimeError, OSError) as e:
            raise ModelError(f"{source}: not a readable ONNX model ({type(e).__name__}: {e})",
                             hint="the file may be truncated or not be an ONNX file") from None
    else:
        raise ModelError(f"cannot import a {type(model).__name__}: give a path or an onnx.ModelProto")
    if proto.ir_version <= 0 or not proto.HasField("graph") or not proto.graph.output:
        raise ModelError(f"{source}: not an ONNX model (no graph, outputs or IR version)",
                         hint="the file may be truncated or not be an ONNX file")
    if proto.functions:
        try:
            proto = onnx.inliner.inline_local_functions(proto)
        except Exception as e:  # noqa: BLE001 - onnx's inliner raises C++ errors of several kinds
            raise ModelError(f"{source}: its model-local functions cannot be inlined: {e}") from None
    return proto, source


def _opset(proto: onnx.ModelProto, source: str) -> tuple[int, dict]:
    """The ai.onnx opset, and every imported domain's version."""
    versions = {imp.domain: imp.version for imp in proto.opset_import}
    opset = versions.get("", versions.get("ai.onnx"))
    if opset is None:
        raise ModelError(f"{source}: the model imports no ai.onnx opset")
    if opset not in OPSETS:
        raise UnsupportedError(f"{source}: ai.onnx opset {opset} is not supported (kaiyuan reads opsets "
                               f"{OPSETS.start}-{OPSETS.stop - 1})",
                               hint="convert it: onnx.version_converter.convert_version(model, 17)")
    return opset, versions


def _inferred_types(proto: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """Value name → type from onnx's shape inference (empty when it fails: types are then left to
    the OpDefs, and specialise recomputes them all anyway)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(_without_weight_data(proto), strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - shape inference is only a help here
        inferred = proto
    g = inferred.graph
    return {v.name: v.type for v in (*g.value_info, *g.input, *g.output)}


SHAPE_DATA_MAX = 64  # initialisers this small keep their values for shape inference's data propagation


def _without_weight_data(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its large initialisers declared as typed inputs instead: shape inference
    serialises the model, which for weights is slow (and impossible past protobuf's 2 GB)."""
    g = proto.graph
    graph = onnx.GraphProto(name=g.name, node=g.node, input=g.input, output=g.output, value_info=g.value_info)
    declared = {v.name for v in g.input}
    for t in g.initializer:
        if int(np.prod(t.dims, dtype=np.int64)) <= SHAPE_DATA_MAX:
            graph.initializer.append(t)
        elif t.name not in declared:
            graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return onnx.ModelProto(ir_version=proto.ir_version, opset_import=proto.opset_import, graph=graph)


def _input_info(v: onnx.ValueInfoProto, source: str) -> ValueInfo:
    if not v.type.HasField("tensor_type"):
        raise UnsupportedError(f"{source}: graph input '{v.name}' is not a tensor ({v.type.WhichOneof('value')})")
    dtype, shape = _dtype_shape(v.type, f"{source}: graph input '{v.name}': ")
    return ValueInfo(v.name, dtype, shape)


def _dtype_shape(t: onnx.TypeProto, where: str) -> tuple[np.dtype, tuple | None]:
    tt = t.tensor_type
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        element_type(dtype)
    except (KeyError, ValueError, TypeError, UnsupportedError):
        name = onnx.TensorProto.DataType.Name(tt.elem_type) if tt.elem_type else "UNDEFINED"
        raise UnsupportedError(f"{where}element type {name} is not supported") from None
    if not tt.HasField("shape"):
        return dtype, None
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or None)
    return dtype, tuple(dims)


def _topological(graph: onnx.GraphProto, available: set, source: str):
    """(original index, node) in an order where each node comes after the producers of its inputs
    (the file's order when it already is one)."""
    available = set(available) | {""}
    pending = list(enumerate(graph.node))
    while pending:
        rest = []
        for i, node in pending:
            if all(n in available for n in node.input):
                available.update(node.output)
                yield i, node
            else:
                rest.append((i, node))
        if len(rest) == len(pending):
            i, node = rest[0]
            missing = next(n for n in node.input if n not in available)
            raise ModelError(f"{source}: node '{node.name or f'{node.op_type}_{i}'}' ({node.op_type}) reads "
                             f"'{missing}', which no node, input or initializer produces (or a cycle does)")
        pending = rest


# ----------------------------------------------------------------------------------- nodes


class _Builder:
    """Appends ops to @main while reading nodes; maps ONNX value names to SSA values."""

    def __init__(self, model: GraphModel, consts: dict, known: dict, source: str, versions: dict):
        self.model, self.consts, self.known, self.source, self.versions = model, consts, known, source, versions
        self.block = model.block
        self.values = {info.name: arg for info, arg in zip(model.inputs, self.block.args)}
        self.const_nodes: dict[str, str] = {}  # value name → name of the Constant node that made it
        self.none = None

    def value(self, name: str, reader: str):
        """The SSA value of an ONNX name (read by `reader`, for messages); constants are
        materialised at their first use."""
        if name == "":
            if self.none is None:  # one shared absent value, at the top of @main
                self.none = NoneOp.create(result_types=[NoneType()])
                if self.block.first_op is None:
                    self.block.add_op(self.none)
                else:
                    self.block.insert_op_before(self.none, self.block.first_op)
            return self.none.results[0]
        if name not in self.values:
            if name not in self.consts:
                raise ModelError(f"{self.source}: {reader} reads '{name}', which is never produced")
            self.values[name] = self._constant(name, self.consts[name])
        return self.values[name]

    def _constant(self, name: str, array: np.ndarray):
        if inline(array):
            op = make_constant(array, self.const_nodes.get(name, name))
        else:
            self.model.weights[name] = array
            op = make_weight(name, tensor_type(array.dtype, array.shape))
        self.block.add_op(op)
        op.results[0].name_hint = value_name(name)
        return op.results[0]

    def add_node(self, node: onnx.NodeProto, index: int) -> None:
        name = node.name or f"{node.op_type}_{index}"
        where = f"node '{name}': "
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        if node.op_type in CONTROL_FLOW or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                                               for a in node.attribute):
            raise UnsupportedError(f"{where}{node.op_type} has a subgraph; control flow (If/Loop/Scan) is not supported",
                                   hint="export the model without data-dependent control flow")
        given = {a.name: from_onnx(a, where) for a in node.attribute}
        if domain == "" and node.op_type == "Constant":
            self.consts[node.output[0]] = _constant_node_value(given, where)
            self.const_nodes[node.output[0]] = name
            return
        opdef = schema.lookup(node.op_type, self._version(domain), domain, where=where)
        inputs = _trim(list(node.input))
        outputs = _trim(list(node.output))
        if NUM_OUTPUTS in opdef.attrs:  # ops whose output count only the node knows (Split)
            given[NUM_OUTPUTS] = len(node.output)
        resolved = opdef.resolve_attrs(given, where.removesuffix(": "))
        _check_counts(opdef, len(inputs), len(outputs), where)
        operands = [self.value(n, f"node '{name}'") for n in inputs]
        in_types = [value_type(v) for v in operands]
        check_dtype(opdef, in_types, where)
        consts = [self.consts.get(n) if i in opdef.value_inputs else None for i, n in enumerate(inputs)]
        result_types = self._result_types(opdef, outputs, in_types, resolved, consts, f"node '{name}' ({node.op_type}): ")
        op = make_op(node.op_type, operands, result_types, given, name, domain)
        self.block.add_op(op)
        for out, r in zip(outputs, op.results):
            if out:
                r.name_hint = value_name(out)
                self.values[out] = r

    def _version(self, domain: str) -> int:
        """The opset a node of `domain` is looked up at: the model's ai.onnx opset, kaiyuan's own
        version for its operators, the imported version for any other domain."""
        if domain == "":
            return self.model.opset
        if domain == KAIYUAN_DOMAIN:
            return KAIYUAN_OPSET
        return self.versions.get(domain, 1)

    def _result_types(self, opdef, outputs, in_types, resolved, consts, prefix: str) -> list:
        """Each output's type: from the OpDef when its inputs are static and its value inputs
        constant (so an unsupported dtype or attribute value fails now, at load time); else from
        onnx's inference; else from the OpDef if it can infer from symbolic dims; else a tensor of
        unknown rank (specialise sets the real one)."""
        static = all(t is None or (t.shape is not None and t.static) for t in in_types) and all(
            consts[i] is not None for i in opdef.value_inputs if i < len(in_types) and in_types[i] is not None)
        if static:
            with with_prefix(prefix):
                inferred = list(opdef.infer(in_types, resolved, consts))
            if len(inferred) < len(outputs):
                raise UnsupportedError(f"{prefix}the OpDef infers {len(inferred)} outputs, the node has {len(outputs)}")
            return [tensor_type(t.dtype, t.shape) for t in inferred[:len(outputs)]]
        types = [self._known_type(n) for n in outputs]
        if all(t is not None for t in types):
            return types
        try:
            guessed = [tensor_type(t.dtype, t.shape) for t in opdef.infer(in_types, resolved, consts)]
        except Exception:  # noqa: BLE001 - dims are symbolic here; the OpDef may need them concrete
            guessed = []
        first = next((t for t in in_types if t is not None), None)
        unknown = tensor_type(first.dtype if first else np.float32, None)
        guessed = list(guessed) + [unknown] * (len(types) - len(guessed))
        return [t if t is not None else g for t, g in zip(types, guessed)]

    def _known_type(self, name: str):
        t = self.known.get(name)
        if not name or t is None or not t.HasField("tensor_type") or not t.tensor_type.elem_type:
            return None
        try:
            return tensor_type(*_dtype_shape(t, ""))
        except UnsupportedError:
            return None

    def finish(self, outputs) -> None:
        results = []
        for v in outputs:
            value = self.value(v.name, f"graph output '{v.name}'")
            shape = _dtype_shape(v.type, "")[1] if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type else None
            results.append((v.name, value, shape))
        set_outputs(self.model, results)


def _trim(names: list[str]) -> list[str]:
    """Drop trailing empty names: absent optional inputs/outputs at the end are just left out."""
    while names and names[-1] == "":
        names.pop()
    return names


def _check_counts(opdef, n_in: int, n_out: int, where: str) -> None:
    for what, n, (lo, hi) in (("inputs", n_in, opdef.inputs), ("outputs", n_out, opdef.outputs)):
        if not lo <= n <= hi:
            raise UnsupportedError(f"{where}{opdef.op_type} with {n} {what} is not supported "
                                   f"(kaiyuan's {opdef.op_type} has {count_range(lo, hi)})")


def _constant_node_value(given: dict, where: str) -> np.ndarray:
    """The value of an ONNX Constant node, whichever of its attributes holds it."""
    if "value" in given:
        return given["value"]
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in given:
            return np.array(given[key], dtype)
    raise UnsupportedError(f"{where}Constant with attribute(s) {sorted(given)} is not supported",
                           hint="supported: value, value_float(s), value_int(s)")
