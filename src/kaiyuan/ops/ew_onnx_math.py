"""ONNX arithmetic, math and activation operators as element-wise expressions (see ew_defs).

    Add Sub Mul Div         13: (u)int32/64 + floats; 14+: every numeric type. Div truncates ints.
    Pow                     base int32, int64, floats; exponent any numeric (bf16 from 15)
    Mod                     every numeric type; fmod=0 (sign of the divisor) only for integers,
                            as the spec demands; fmod=1 is C fmod
    Neg Abs Sign            Neg: signed ints and floats; Abs, Sign: every numeric type
    Exp Log Sqrt Reciprocal Tanh Sigmoid Erf Floor Ceil   floats incl. bf16 (Erf: floats only)
    Round Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh Acosh Atanh Softplus Softsign
                            fp16, fp32, fp64 (bf16 arrives in opset 22)
    Relu                    13: floats; 14+: also signed ints
    LeakyRelu Elu Selu Celu ThresholdedRelu HardSigmoid HardSwish Mish Gelu PRelu
                            as their ONNX definitions (Celu: fp32 only; Gelu approximate none|tanh)
    Clip                    min/max as optional inputs (scalars, or anything that broadcasts)
    Min Max Sum Mean        variadic with broadcasting; Sum/Mean floats, Min/Max every numeric type
"""

from __future__ import annotations

from ..runtime.errors import UnsupportedError
from .ew_defs import FLOATS, FLOATS_BF, INTS, NUMERIC, SINTS, VARIADIC, X, Y, const, define


def _binary(fn):
    return lambda dts, a: (fn, X, Y)


def _unary(fn):
    return lambda dts, a: (fn, X)


ARITH_13 = ("int32", "int64", "uint32", "uint64") + FLOATS_BF
for _name, _fn in (("Add", "add"), ("Sub", "sub"), ("Mul", "mul"), ("Div", "div")):
    define(_name, _binary(_fn), ARITH_13, since=13, until=13, inputs=(2, 2))
    define(_name, _binary(_fn), NUMERIC, since=14, inputs=(2, 2))

_POW_T = ("int32", "int64") + FLOATS_BF
_POW_T1 = INTS + FLOATS
define("Pow", _binary("pow"), _POW_T, since=13, until=14, inputs=(2, 2), checks={0: _POW_T, 1: _POW_T1})
define("Pow", _binary("pow"), _POW_T, since=15, inputs=(2, 2), checks={0: _POW_T, 1: _POW_T1 + ("bfloat16",)})


def _mod(dts, a):
    if a["fmod"] not in (0, 1):
        raise UnsupportedError(f"Mod: fmod={a['fmod']!r}", hint="fmod is 0 or 1")
    if a["fmod"] == 0 and dts[0].is_floating:
        raise UnsupportedError("Mod: fmod=0 is not defined for floating-point inputs",
                               hint="ONNX requires fmod=1 for float inputs")
    return ("fmod" if a["fmod"] else "mod", X, Y)


define("Mod", _mod, NUMERIC, since=13, inputs=(2, 2), attrs={"fmod": 0})

define("Neg", _unary("neg"), SINTS + FLOATS_BF, since=13)
define("Abs", _unary("abs"), NUMERIC, since=13)
define("Sign", _unary("sign"), NUMERIC, since=13)
for _name in ("Exp", "Log", "Sqrt", "Reciprocal", "Tanh", "Sigmoid", "Erf", "Floor", "Ceil"):
    define(_name, _unary(_name.lower()), FLOATS_BF, since=13)
define("Round", _unary("round"), FLOATS, since=11)
for _name in ("Sin", "Cos", "Tan", "Asin", "Acos", "Atan"):
    define(_name, _unary(_name.lower()), FLOATS, since=7)
for _name in ("Sinh", "Cosh", "Asinh", "Acosh", "Atanh"):
    define(_name, _unary(_name.lower()), FLOATS, since=9)
define("Softplus", _unary("softplus"), FLOATS, since=1)
define("Softsign", _unary("softsign"), FLOATS, since=1)
define("Relu", _unary("relu"), FLOATS_BF, since=13, until=13)
define("Relu", _unary("relu"), FLOATS_BF + SINTS, since=14)


# --------------------------------------------------------------------------------- activations


def _leaky(dts, a):
    return ("leaky_relu", X, const(a["alpha"], dts[0]))


define("LeakyRelu", _leaky, FLOATS, since=6, until=15, attrs={"alpha": 0.01})
define("LeakyRelu", _leaky, FLOATS_BF, since=16, attrs={"alpha": 0.01})


def _elu(dts, a):
    t = dts[0]
    return ("where", ("gt", X, const(0, t)), X, ("mul", const(a["alpha"], t), ("expm1", X)))


def _selu(dts, a):
    t = dts[0]
    return ("mul", _elu(dts, a), const(a["gamma"], t))


def _celu(dts, a):
    t, alpha = dts[0], const(a["alpha"], dts[0])
    neg = ("min", const(0, t), ("mul", alpha, ("expm1", ("div", X, alpha))))
    return ("add", ("max", const(0, t), X), neg)


def _thresholded(dts, a):
    t = dts[0]
    return ("where", ("gt", X, const(a["alpha"], t)), X, const(0, t))


def _hard_sigmoid_of(t, alpha, beta):
    lin = ("add", ("mul", const(alpha, t), X), const(beta, t))
    return ("max", const(0, t), ("min", const(1, t), lin))


def _gelu(dts, a):
    if a["approximate"] not in ("none", "tanh"):
        raise UnsupportedError(f"Gelu: approximate={a['approximate']!r}", hint="use 'none' or 'tanh'")
    return ("gelu" if a["approximate"] == "none" else "gelu_tanh", X)


def _prelu(dts, a):
    t = dts[0]
    return ("where", ("gt", X, const(0, t)), X, ("mul", X, Y))


define("Elu", _elu, FLOATS, since=6, attrs={"alpha": 1.0})
define("Selu", _selu, FLOATS, since=6, attrs={"alpha": 1.67326319217681884765625,
                                               "gamma": 1.05070102214813232421875})
define("Celu", _celu, ("float32",), since=12, attrs={"alpha": 1.0})
define("ThresholdedRelu", _thresholded, FLOATS, since=10, attrs={"alpha": 1.0})
define("HardSigmoid", lambda dts, a: _hard_sigmoid_of(dts[0], a["alpha"], a["beta"]), FLOATS, since=6,
       attrs={"alpha": 0.2, "beta": 0.5})
define("HardSwish", lambda dts, a: ("mul", X, _hard_sigmoid_of(dts[0], 1 / 6, 0.5)), FLOATS, since=14)
define("Mish", lambda dts, a: ("mul", X, ("tanh", ("softplus", X))), FLOATS, since=18)
define("Gelu", _gelu, FLOATS_BF, since=20, attrs={"approximate": "none"})
_PRELU = FLOATS + ("int32", "int64", "uint32", "uint64")
define("PRelu", _prelu, _PRELU, since=9, until=15, inputs=(2, 2), shape="first")
define("PRelu", _prelu, _PRELU + ("bfloat16",), since=16, inputs=(2, 2), shape="first")


# ------------------------------------------------------------------------- clip and variadic


def _clip(dts, a):
    """min(max(x, lo), hi) with the bounds that are present (absent inputs are None in dts; the
    expression numbers the present inputs)."""
    expr, k = X, 1
    lo = hi = None
    if len(dts) > 1 and dts[1] is not None:
        lo, k = ("in", k), k + 1
    if len(dts) > 2 and dts[2] is not None:
        hi = ("in", k)
    if lo is not None:
        expr = ("max", expr, lo)
    if hi is not None:
        expr = ("min", expr, hi)
    return expr if expr is not X else ("identity", X)


define("Clip", _clip, NUMERIC, since=13, inputs=(1, 3), shape="first")


def _fold(fn):
    def build(dts, a):
        expr = ("in", 0)
        for i in range(1, len(dts)):
            expr = (fn, expr, ("in", i))
        return expr if len(dts) > 1 else ("identity", expr)

    return build


def _mean(dts, a):
    total = _fold("add")(dts, a)
    return total if len(dts) == 1 else ("div", total, const(len(dts), dts[0]))


define("Max", _fold("max"), NUMERIC, since=13, inputs=VARIADIC)
define("Min", _fold("min"), NUMERIC, since=13, inputs=VARIADIC)
define("Sum", _fold("add"), FLOATS_BF, since=13, inputs=VARIADIC)
define("Mean", _mean, FLOATS_BF, since=13, inputs=VARIADIC)
