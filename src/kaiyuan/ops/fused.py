"""`kaiyuan.Elementwise`: a chain of element-wise operators fused by the graph engine into one
operator whose `expr` attribute is the whole chain as one expression (kaiyuan.ops.elementwise's
expression language, written as the Python literal of its nested tuples). It runs as one
generated kernel: every intermediate value stays in registers instead of making a round trip
through memory, and the chain costs one launch.
"""

from __future__ import annotations

import re

from .ew_defs import broadcast_shapes
from .ew_kernel import result_dtype, run_expr
from ..runtime.dtypes import BY_NAME
from ..runtime.errors import ArgumentError
from .schema import REQUIRED, OpDef, TensorType, register


DTYPE_NAMES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
               "bfloat16", "float32", "float64"} | set(BY_NAME)  # numpy's names and kaiyuan's (fp32, i64, ...)
_TOKEN = re.compile(r"\s*(?:(\$\d+)|([A-Za-z_][A-Za-z0-9_:]*)\(|([-+]?(?:inf|nan|[0-9.]+(?:e[-+]?\d+)?)|True|False)|(\)|,))")


def format_expr(expr) -> str:
    """The attribute text of an expression: `mul($0,sigmoid($0))`, inputs as `$i`, constants as
    `float32(0.5)` (readable in IR dumps; read back by a small parser, never evaluated)."""
    if expr[0] == "in":
        return f"${expr[1]}"
    if expr[0] == "const":
        return f"{expr[2]}({expr[1]!r})"
    args = ",".join(format_expr(a) if isinstance(a, tuple) else repr(a) for a in expr[1:])
    return f"{expr[0]}({args})"


def parse_expr(text: str):
    """The expression tuple of `format_expr`'s text (ValueError when malformed)."""
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"bad element-wise expression at {pos}: {text[pos:pos + 20]!r}")
        tokens.append(m.groups())
        pos = m.end()
    expr, rest = _parse(tokens)
    if rest:
        raise ValueError(f"trailing text in element-wise expression {text!r}")
    return expr


def _parse(tokens):
    (inp, fn, lit, punct), rest = tokens[0], tokens[1:]
    if inp:
        return ("in", int(inp[1:])), rest
    if lit:
        return _literal(lit), rest
    if not fn:
        raise ValueError(f"unexpected {punct!r} in element-wise expression")
    args = []
    while rest and rest[0][3] != ")":
        arg, rest = _parse(rest)
        args.append(arg)
        if rest and rest[0][3] == ",":
            rest = rest[1:]
    if not rest:
        raise ValueError("unclosed ( in element-wise expression")
    if fn in DTYPE_NAMES:
        return ("const", args[0], fn), rest[1:]
    return (fn, *args), rest[1:]


def _literal(text: str):
    if text in ("True", "False"):
        return text == "True"
    return float(text) if any(c in text for c in ".enai") else int(text)


def _infer(types, attrs, consts):
    try:
        expr = parse_expr(attrs["expr"])
    except ValueError as e:
        raise ArgumentError(f"kaiyuan.Elementwise: {e}", hint="see kaiyuan.ops.fused.format_expr") from None
    shape = broadcast_shapes("Elementwise", [t.shape for t in types])
    return [TensorType(result_dtype(expr, [t.dtype for t in types]), shape)]


def _run(inputs, attrs, consts, outputs):
    run_expr(parse_expr(attrs["expr"]), inputs, outputs[0])


register(OpDef("Elementwise", _infer, _run, domain="kaiyuan", inputs=(1, 2**31 - 1), attrs={"expr": REQUIRED},
               inplace=True, doc=__doc__))


def _register_layer_norm() -> None:
    """`kaiyuan.LayerNormalization`: ONNX's opset-17 LayerNormalization for models of older
    opsets, whose decomposed layer norms the graph engine fuses (kaiyuan.graph.fusion)."""
    from . import reduction  # noqa: F401  (registers ai.onnx LayerNormalization)
    from .schema import lookup

    ln = lookup("LayerNormalization", 17)
    register(OpDef("LayerNormalization", ln.infer, ln.run, domain="kaiyuan", inputs=ln.inputs, outputs=ln.outputs,
                   attrs=dict(ln.attrs), dtypes=ln.dtypes, doc=_register_layer_norm.__doc__))


_register_layer_norm()
