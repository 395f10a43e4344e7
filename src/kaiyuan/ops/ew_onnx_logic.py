"""ONNX comparison, logical, bitwise, selection and conversion operators as element-wise
expressions (see ew_defs).

    Equal                         bool and every numeric type (strings: unsupported) → bool
    Less Greater                  every numeric type → bool
    LessOrEqual GreaterOrEqual    every numeric type (bf16 from opset 16) → bool
    Not And Or Xor                bool
    BitwiseAnd/Or/Xor/Not         integer types; BitShift: unsigned types, direction LEFT|RIGHT
                                  (shifts by the bit width or more give 0)
    Where                         bool condition; values of any type (bf16 from opset 16)
    IsNaN                         floats → bool; IsInf: fp32, fp64 (fp16, bf16 from opset 20)
    Cast, CastLike                between bool, (u)int8..64, fp16, bf16, fp32, fp64; float → int
                                  truncates (out-of-range values are undefined, as in ONNX);
                                  `saturate` is accepted and has no effect (it concerns float8)
    Identity                      any type; a view (the planner aliases it), `run` copies
"""

from __future__ import annotations

from ..runtime.errors import UnsupportedError
from .ew_defs import ALL, FLOATS_BF, INTS, NUMERIC, UINTS, X, Y, Z, define
from .schema import REQUIRED

# ONNX TensorProto.DataType codes of the types kaiyuan stores
ONNX_TYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
              9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"}
# ...and of those it does not (named in the error)
UNSUPPORTED_TYPES = {8: "string", 14: "complex64", 15: "complex128", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
                     19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1"}


def _binary(fn):
    return lambda dts, a: (fn, X, Y)


def _unary(fn):
    return lambda dts, a: (fn, X)


define("Equal", _binary("eq"), ALL, since=13, inputs=(2, 2))
define("Less", _binary("lt"), NUMERIC, since=13, inputs=(2, 2))
define("Greater", _binary("gt"), NUMERIC, since=13, inputs=(2, 2))
_NO_BF16 = tuple(d for d in NUMERIC if d != "bfloat16")
for _name, _fn in (("LessOrEqual", "le"), ("GreaterOrEqual", "ge")):
    define(_name, _binary(_fn), _NO_BF16, since=12, until=15, inputs=(2, 2))
    define(_name, _binary(_fn), NUMERIC, since=16, inputs=(2, 2))

define("Not", _unary("not"), ("bool",), since=1)
for _name, _fn in (("And", "and"), ("Or", "or"), ("Xor", "xor")):
    define(_name, _binary(_fn), ("bool",), since=7, inputs=(2, 2))

for _name, _fn in (("BitwiseAnd", "bitwise_and"), ("BitwiseOr", "bitwise_or"), ("BitwiseXor", "bitwise_xor")):
    define(_name, _binary(_fn), INTS, since=18, inputs=(2, 2))
define("BitwiseNot", _unary("bitwise_not"), INTS, since=18)


def _bitshift(dts, a):
    direction = a["direction"].decode() if isinstance(a["direction"], bytes) else a["direction"]
    if direction not in ("LEFT", "RIGHT"):
        raise UnsupportedError(f"BitShift: direction={direction!r}", hint="direction is 'LEFT' or 'RIGHT'")
    return ("bitshift_left" if direction == "LEFT" else "bitshift_right", X, Y)


define("BitShift", _bitshift, UINTS, since=11, inputs=(2, 2), attrs={"direction": REQUIRED})

_WHERE = lambda dts, a: ("where", X, Y, Z)  # noqa: E731
define("Where", _WHERE, ("bool",), since=9, until=15, inputs=(3, 3),
       checks={0: ("bool",), 1: tuple(d for d in ALL if d != "bfloat16")})
define("Where", _WHERE, ("bool",), since=16, inputs=(3, 3), checks={0: ("bool",), 1: ALL})

define("IsNaN", _unary("isnan"), FLOATS_BF, since=13)


def _isinf(dts, a):
    return ("isinf", X, int(bool(a["detect_positive"])), int(bool(a["detect_negative"])))


_ISINF_ATTRS = {"detect_negative": 1, "detect_positive": 1}
define("IsInf", _isinf, ("float32", "float64"), since=10, until=19, attrs=_ISINF_ATTRS)
define("IsInf", _isinf, FLOATS_BF, since=20, attrs=_ISINF_ATTRS)


# ------------------------------------------------------------------------------------ casts


def onnx_dtype(code) -> str:
    """The numpy dtype name of an ONNX TensorProto.DataType code; UnsupportedError for others."""
    name = ONNX_TYPES.get(int(code))
    if name is None:
        what = UNSUPPORTED_TYPES.get(int(code), "unknown")
        raise UnsupportedError(f"Cast: target type {code} ({what}) is not supported",
                               hint=f"supported: {', '.join(f'{c} ({n})' for c, n in ONNX_TYPES.items())}")
    return name


def _cast(dts, a):
    return ("cast:" + onnx_dtype(a["to"]), X)


def _cast_like(dts, a):
    return ("cast:" + dts[1].np.name, X)


define("Cast", _cast, ALL, since=13, until=18, attrs={"to": REQUIRED})
define("Cast", _cast, ALL, since=19, attrs={"to": REQUIRED, "saturate": 1})
define("CastLike", _cast_like, ALL, since=15, until=18, inputs=(2, 2), checks={0: ALL, 1: ALL}, shape="x")
define("CastLike", _cast_like, ALL, since=19, inputs=(2, 2), attrs={"saturate": 1}, checks={0: ALL, 1: ALL},
       shape="x")

define("Identity", _unary("identity"), ALL, since=13, view=True)

__all__ = ["ONNX_TYPES", "onnx_dtype"]
