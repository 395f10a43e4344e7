"""ONNX attributes and tensors ↔ the plain Python values the graph IR stores (see attributes.py).

Reading: ints → int, floats → float (the f32 value ONNX stored), strings → str, tensors →
np.ndarray, lists → lists. Subgraphs, sparse tensors and type attributes are UnsupportedError.
Writing (for the reference evaluator that folds constants) takes each attribute's type from the
operator's ONNX schema, so an empty list is written as the type the operator expects.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import AttributeProto, helper, numpy_helper

from ..runtime.errors import ModelError, UnsupportedError
from .attributes import element_type

A = AttributeProto


def tensor_array(t: onnx.TensorProto, where: str) -> np.ndarray:
    """The numpy value of a TensorProto (external data must already be loaded)."""
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:  # noqa: BLE001 - onnx raises several types for odd tensors
        raise ModelError(f"{where}tensor '{t.name}' cannot be read: {e}",
                         hint="external data must sit next to the model file (or be loaded into the proto)") from None
    try:
        element_type(arr.dtype)
    except UnsupportedError as e:
        raise UnsupportedError(f"{where}tensor '{t.name}': {e.message}", hint=e.hint) from None
    return arr


def from_onnx(attr: AttributeProto, where: str):
    """The plain Python value of an ONNX attribute."""
    if attr.ref_attr_name:
        raise UnsupportedError(f"{where}attribute '{attr.name}' refers to a function attribute, which is not supported")
    t = attr.type
    if t == A.FLOAT:
        return float(attr.f)
    if t == A.INT:
        return int(attr.i)
    if t == A.STRING:
        return _text(attr.s, attr.name, where)
    if t == A.TENSOR:
        return tensor_array(attr.t, where)
    if t == A.FLOATS:
        return [float(v) for v in attr.floats]
    if t == A.INTS:
        return [int(v) for v in attr.ints]
    if t == A.STRINGS:
        return [_text(s, attr.name, where) for s in attr.strings]
    if t == A.TENSORS:
        return [tensor_array(x, where) for x in attr.tensors]
    kind = A.AttributeType.Name(t)
    raise UnsupportedError(f"{where}attribute '{attr.name}' of type {kind} is not supported")


def _text(raw: bytes, name: str, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedError(f"{where}attribute '{name}' is not UTF-8 text") from None


_LIST_TYPES = {A.FLOAT: A.FLOATS, A.INT: A.INTS, A.STRING: A.STRINGS, A.TENSOR: A.TENSORS}


def to_onnx(name: str, value, schema_type: int | None = None) -> AttributeProto:
    """An ONNX attribute for a plain value, typed as the schema says when it is known."""
    t = schema_type
    if t == A.FLOAT:
        value = float(value)
    elif t == A.INT:
        value = int(value)
    elif t == A.FLOATS:
        value = [float(v) for v in value]
    elif t == A.INTS:
        value = [int(v) for v in value]
    if isinstance(value, np.ndarray):
        return helper.make_attribute(name, numpy_helper.from_array(value))
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        return helper.make_attribute(name, [numpy_helper.from_array(v) for v in value])
    if isinstance(value, list) and not value:
        return helper.make_attribute(name, [], attr_type=t if t in _LIST_TYPES.values() else A.INTS)
    return helper.make_attribute(name, value)


def schema_attr_types(op_type: str, opset: int, domain: str = "") -> dict[str, int]:
    """Attribute name → AttributeProto type from ONNX's schema ({} if ONNX does not know the op)."""
    try:
        s = onnx.defs.get_schema(op_type, opset, domain)
    except onnx.defs.SchemaError:
        return {}
    return {k: int(v.type) for k, v in s.attributes.items()}
