"""How an ONNX element-wise operator becomes an OpDef: a builder that writes the operator as an
element-wise expression (ew_expr) from its inputs' dtypes and attributes.

`infer` checks the inputs' dtypes against the operator's ONNX type constraints (UnsupportedError
naming what is supported), types the expression (operands that must share a dtype and do not:
ArgumentError) and broadcasts the shapes; `run` hands the same expression to the engine, so the
operator runs as one generated kernel. The graph engine's fusion pass can splice these
expressions together (`expression(op_type, opset, dtypes, attrs)`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..runtime.dtypes import dtype as to_dtype
from ..runtime.errors import ArgumentError, UnsupportedError
from .ew_expr import type_of
from .ew_kernel import run_expr
from .schema import OpDef, TensorType, register

FLOATS = ("float16", "float32", "float64")
FLOATS_BF = FLOATS + ("bfloat16",)
SINTS = ("int8", "int16", "int32", "int64")
UINTS = ("uint8", "uint16", "uint32", "uint64")
INTS = SINTS + UINTS
NUMERIC = INTS + FLOATS_BF
ALL = NUMERIC + ("bool",)
VARIADIC = (1, 2**31 - 1)

X, Y, Z = ("in", 0), ("in", 1), ("in", 2)

# Builder: (input dtypes as ky DTypes, None for an absent optional input; resolved attrs) -> expr
Builder = Callable[[list, dict], tuple]

_BUILDERS: dict[tuple[str, int], Builder] = {}


def const(value, t) -> tuple:
    """A constant of the operator's dtype t (a ky DType)."""
    return ("const", value, t.name)


def define(op_type: str, build: Builder, dtypes: tuple, since: int = 13, until: int = 10**9,
           inputs: tuple = (1, 1), attrs: dict | None = None, checks: dict | None = None,
           shape: str = "multi", view: bool = False, doc: str = "") -> OpDef:
    """Register op_type for opsets since..until. `dtypes` constrain input 0 (or, with `checks`,
    {input index: dtypes} constrain those inputs); `shape` is "multi" (numpy broadcasting of all
    inputs), "first" (the output has input 0's shape and the others broadcast to it: PRelu, Clip)
    or "x" (input 0's shape, the others' shapes do not matter: CastLike)."""
    checks = checks if checks is not None else {0: dtypes}

    def check(dts: list) -> None:
        for i, allowed in checks.items():
            if i < len(dts) and dts[i] is not None and dts[i].np.name not in allowed:
                raise UnsupportedError(
                    f"{op_type} (opset {since}-{until if until < 10**9 else 'latest'}): input {i} has dtype "
                    f"{dts[i].np.name}, which it does not support", hint=f"supported: {', '.join(allowed)}")

    def infer(types, attrs, consts):
        dts = [None if t is None else _dtype_of(op_type, i, t.dtype) for i, t in enumerate(types)]
        check(dts)
        present = [t for t in dts if t is not None]
        out = type_of(build(dts, attrs), present, {})
        shapes = [t.shape for t in types if t is not None]
        shp = tuple(types[0].shape) if shape in ("first", "x") else broadcast_shapes(op_type, shapes)
        if shape == "first":
            broadcast_shapes(op_type, shapes, target=shp)
        return [TensorType(out.np, shp)]

    def run(inputs, attrs, consts, outputs):
        dts = [None if x is None else to_dtype(x.dtype) for x in inputs]
        run_expr(build(dts, attrs), [x for x in inputs if x is not None], outputs[0])

    op = OpDef(op_type, infer, run, since=since, until=until, inputs=inputs, attrs=dict(attrs or {}),
               dtypes=checks.get(0), view=view, inplace=not view, doc=doc)
    _BUILDERS[(op_type, since)] = build
    return register(op)


def _dtype_of(op_type: str, i: int, dtype):
    try:
        return to_dtype(dtype)
    except UnsupportedError as e:
        raise UnsupportedError(f"{op_type}: input {i} has dtype {dtype}, which kaiyuan does not store",
                               hint=e.hint) from None


def expression(op_type: str, opset: int, dtypes: list, attrs: dict) -> tuple:
    """The element-wise expression of an ONNX node (inputs numbered as its present inputs), for
    a fusion pass; attrs must be resolved (OpDef.resolve_attrs). KeyError if it is not one."""
    for (name, since), build in _BUILDERS.items():
        if name == op_type:
            from .schema import lookup

            if lookup(op_type, opset).since == since:
                return build([None if d is None else to_dtype(d) for d in dtypes], attrs)
    raise KeyError(op_type)


def broadcast_shapes(op_type: str, shapes: list, target: tuple | None = None) -> tuple:
    """numpy broadcasting of `shapes` (symbolic dims kept when they meet 1 or themselves); with
    `target`, every shape must broadcast to it unchanged. ArgumentError otherwise."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(rank):
        dims = [s[len(s) - rank + k] for s in shapes if len(s) - rank + k >= 0]
        d = _merge(op_type, shapes, dims)
        out.append(d)
    result = tuple(out)
    if target is not None and (len(result) != len(target) or any(
            isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)) and a != b
            for a, b in zip(result, target))):
        raise ArgumentError(f"{op_type}: shapes {[tuple(s) for s in shapes]} do not broadcast to "
                            f"input 0's shape {tuple(target)}")
    return result


def _merge(op_type: str, shapes, dims):
    known = {int(d) for d in dims if isinstance(d, (int, np.integer)) and d != 1}
    if len(known) > 1:
        raise ArgumentError(f"{op_type}: shapes {[tuple(s) for s in shapes]} do not broadcast")
    if known:
        return known.pop()
    symbolic = [d for d in dims if not isinstance(d, (int, np.integer))]
    if symbolic:
        return symbolic[0] if all(s == symbolic[0] for s in symbolic) else None
    return 1
