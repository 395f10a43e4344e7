"""One lane of an element-wise `arith`/`math` op as a C expression.

`lane_expr(op, args)` gets the C expressions of the op's operands (one lane each) and returns the
C expression of the result lane. Integers are two's complement: add/sub/mul/shl compute in the
unsigned type so overflow wraps (no C undefined behaviour); division by zero gives 0 instead of
trapping. Floats follow IEEE: f16/bf16 are widened to float, computed, and rounded back.
"""

from __future__ import annotations

from xdsl.dialects.builtin import FloatAttr, IntegerAttr

from ...runtime.errors import UnsupportedError
from .ctype import CPU, CTypes, is_float, width
from ...ir.ky import element_of

WRAP_BIN = {"arith.addi": "+", "arith.subi": "-", "arith.muli": "*"}
BIT_BIN = {"arith.andi": "&", "arith.ori": "|", "arith.xori": "^"}
FLOAT_BIN = {"arith.addf": "+", "arith.subf": "-", "arith.mulf": "*", "arith.divf": "/"}
CMPI = {"eq": "==", "ne": "!=", "slt": "<", "sle": "<=", "sgt": ">", "sge": ">=",
        "ult": "<", "ule": "<=", "ugt": ">", "uge": ">="}
# math ops computed by libm's function of this name (named per flavour by CTypes.math)
MATH_LIBM = {"math.exp": "exp", "math.exp2": "exp2", "math.log": "log", "math.log2": "log2", "math.sqrt": "sqrt",
             "math.sin": "sin", "math.cos": "cos", "math.tan": "tan", "math.tanh": "tanh", "math.absf": "fabs",
             "math.floor": "floor", "math.ceil": "ceil", "math.erf": "erf", "math.log1p": "log1p",
             "math.expm1": "expm1", "math.powf": "pow", "math.fma": "fma", "math.trunc": "trunc",
             "math.round": "round", "math.roundeven": "rint", "math.atan": "atan", "math.atan2": "atan2",
             "math.sinh": "sinh", "math.cosh": "cosh", "math.asin": "asin", "math.acos": "acos",
             "math.log10": "log10", "math.cbrt": "cbrt", "math.copysign": "copysign"}


def _signed(a: str, t) -> str:
    """Operand as a signed C value (i1 true is -1 when signed)."""
    return f"(-(int)({a}))" if width(element_of(t)) == 1 else a


def _cmpf(pred: str, a: str, b: str) -> str:
    return {
        "false": "0", "true": "1",
        "oeq": f"({a} == {b})", "ogt": f"({a} > {b})", "oge": f"({a} >= {b})", "olt": f"({a} < {b})",
        "ole": f"({a} <= {b})", "one": f"({a} < {b} || {a} > {b})", "ord": f"({a} == {a} && {b} == {b})",
        "ueq": f"(!({a} < {b} || {a} > {b}))", "ugt": f"(!({a} <= {b}))", "uge": f"(!({a} < {b}))",
        "ult": f"(!({a} >= {b}))", "ule": f"(!({a} > {b}))", "une": f"({a} != {b})",
        "uno": f"({a} != {a} || {b} != {b})",
    }[pred]


def _int_op(ty: CTypes, name: str, a: str, b: str, t) -> str | None:
    T, U, w = ty.ctype(t), ty.utype(t), width(element_of(t))
    if w == 1:
        T = U = "unsigned"
    if name in WRAP_BIN:
        r = f"(({U}){a} {WRAP_BIN[name]} ({U}){b})"
        return f"((_Bool)({r} & 1u))" if w == 1 else f"(({T}){r})"
    if name in BIT_BIN:
        return f"({a} {BIT_BIN[name]} {b})"
    if name == "arith.divsi":
        return f"KY_DIVS({T}, {U}, {a}, {b})"
    if name == "arith.remsi":
        return f"KY_REMS({T}, {a}, {b})"
    if name == "arith.divui":
        return f"(({T})KY_DIVU({U}, ({U}){a}, ({U}){b}))"
    if name == "arith.remui":
        return f"(({T})KY_REMU({U}, ({U}){a}, ({U}){b}))"
    if name == "arith.shli":
        return f"(({U}){b} >= {w} ? ({T})0 : ({T})(({U}){a} << ({U}){b}))"
    if name == "arith.shrsi":
        return f"(({U}){b} >= {w} ? ({T})({a} < 0 ? -1 : 0) : ({T})({a} >> ({U}){b}))"
    if name == "arith.shrui":
        return f"(({U}){b} >= {w} ? ({T})0 : ({T})(({U}){a} >> ({U}){b}))"
    if name in ("arith.maxsi", "arith.minsi"):
        op = ">" if name == "arith.maxsi" else "<"
        return f"({_signed(a, t)} {op} {_signed(b, t)} ? {a} : {b})"
    if name in ("arith.maxui", "arith.minui"):
        op = ">" if name == "arith.maxui" else "<"
        return f"(({U}){a} {op} ({U}){b} ? {a} : {b})"
    return None


def _float_op(ty: CTypes, name: str, args: list[str], t) -> str | None:
    sfx, ct = ty.fsuffix(t), ty.compute_type(t)
    x = [ty.to_compute(a, t) for a in args]
    if name in FLOAT_BIN:
        r = f"({x[0]} {FLOAT_BIN[name]} {x[1]})"
    elif name == "arith.negf":
        r = f"(-{x[0]})"
    elif name == "arith.remf":
        r = f"{ty.math('fmod', ct)}({x[0]}, {x[1]})"
    elif name in ("arith.maximumf", "arith.minimumf"):
        fn = "ky_maximum" if name == "arith.maximumf" else "ky_minimum"
        r = f"{fn}{sfx}({x[0]}, {x[1]})"
    elif name in ("arith.maxnumf", "arith.minnumf"):
        r = f"{ty.math('fmax' if name == 'arith.maxnumf' else 'fmin', ct)}({x[0]}, {x[1]})"
    elif name == "math.rsqrt":
        r = f"(({ct})1 / {ty.math('sqrt', ct)}({x[0]}))"
    elif name in MATH_LIBM:
        r = f"{ty.math(MATH_LIBM[name], ct)}({', '.join(x)})"
    else:
        return None
    return ty.from_compute(r, t)


def _cast(ty: CTypes, op, a: str) -> str:
    name, st, dt = op.name, op.operands[0].type, op.results[0].type
    S, D, SU = ty.ctype(st), ty.ctype(dt), ty.utype(st)
    sw, dw = width(element_of(st)), width(element_of(dt))
    if name == "arith.extsi":
        return f"(({D}){_signed(a, st)})"
    if name == "arith.extui":
        return f"(({D})({SU}){a})"
    if name == "arith.trunci":
        return f"((_Bool)({a} & 1))" if dw == 1 else f"(({D}){a})"
    if name == "arith.sitofp":
        return ty.from_compute(f"(({ty.compute_type(dt)}){_signed(a, st)})", dt)
    if name == "arith.uitofp":
        return ty.from_compute(f"(({ty.compute_type(dt)})({SU}){a})", dt)
    if name in ("arith.fptosi", "arith.fptoui"):
        x = ty.to_compute(a, st)
        if dw == 1:
            return f"((_Bool)({x} != 0))"
        return f"(({D}){x})" if name == "arith.fptosi" else f"(({D})({ty.utype(dt)}){x})"
    if name in ("arith.extf", "arith.truncf"):
        if D == "_Float16" and S == "double":
            return f"((_Float16)({a}))"
        if D == "ky_f16" and S == "double":
            return f"ky_d2h({a})"          # one rounding, not double -> float -> half
        return ty.from_compute(f"(({ty.compute_type(dt)}){ty.to_compute(a, st)})", dt)
    if name == "arith.bitcast":
        return f"KY_BITCAST({D}, {S}, {a})"
    if name == "arith.index_cast":
        return f"(({D}){a})"
    raise UnsupportedError(f"cast {name} is not supported")


CASTS = {"arith.extsi", "arith.extui", "arith.trunci", "arith.sitofp", "arith.uitofp", "arith.fptosi",
         "arith.fptoui", "arith.extf", "arith.truncf", "arith.bitcast", "arith.index_cast"}


def lane_expr(op, args: list[str], ty: CTypes = CPU) -> str | None:
    """C expression of one lane of `op`, or None when `op` is not an element-wise arith/math op.
    `ty` is the flavour of C (default: the cpu backend's)."""
    name = op.name
    if name == "arith.constant":
        v, t = op.value, op.results[0].type
        if isinstance(v, FloatAttr):
            return ty.float_literal(v.value.data, t)
        if isinstance(v, IntegerAttr):
            return ty.int_literal(v.value.data, t)
        raise UnsupportedError("arith.constant must be a scalar integer or float")
    if name in CASTS:
        return _cast(ty, op, args[0])
    if name == "arith.select":
        return f"({args[0]} ? {args[1]} : {args[2]})"
    if name == "arith.cmpi":
        pred, t = op.predicate_name, op.operands[0].type
        if pred[0] == "u":
            U = ty.utype(t)
            return f"(({U}){args[0]} {CMPI[pred]} ({U}){args[1]})"
        return f"({_signed(args[0], t)} {CMPI[pred]} {_signed(args[1], t)})"
    if name == "arith.cmpf":
        t = op.operands[0].type
        return _cmpf(op.predicate_name, ty.to_compute(args[0], t), ty.to_compute(args[1], t))
    t = op.results[0].type
    if name == "math.absi":
        C, U = ty.ctype(t), ty.utype(t)
        return f"(({C})({args[0]} < 0 ? ({U})0 - ({U}){args[0]} : ({U}){args[0]}))"
    if is_float(element_of(t)):
        return _float_op(ty, name, args, t)
    return _int_op(ty, name, args[0], args[1], t) if len(args) == 2 else None
