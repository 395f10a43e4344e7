"""Element-wise expressions: the function table, the dtype rules, and the kernel code for each node.

An expression is a nested tuple:

    ("in", i)                    input i (its dtype is the input's)
    ("const", value, dtype)      a constant, rounded to `dtype` (any dtype spelling: "float32", "fp32")
    (fn, arg, ..., attr, ...)    a function of sub-expressions; a few take plain trailing values
                                 (isinf's detect_positive, detect_negative flags)

Functions (operand kinds: f float, i signed int, u unsigned int, b bool; "same": every operand has
the first's dtype and so does the result; "bool": the result is bool):

    add sub mul div mod fmod     fiu, same. div truncates integers toward zero; mod takes the
                                 divisor's sign (numpy.mod), fmod the dividend's (C fmod). Integer
                                 x/0, x%0 give 0 (numpy's result, not a trap).
    pow(base, exp)               base fiu, exp fiu of any dtype; the result has base's dtype
                                 (ints: exact, wrapping; int base with a float exp: via fp64)
    neg relu                     fi, same         abs sign  fiu, same
    exp log sqrt reciprocal erf tanh sigmoid sin cos tan asin acos atan sinh cosh asinh acosh
    atanh softplus softsign floor ceil round expm1 log1p gelu gelu_tanh
                                 f, same (round: half to even; gelu_tanh: the tanh approximation)
    max min                      fiub, same       clip(x, lo, hi)  fiu, same: min(max(x, lo), hi)
    leaky_relu(x, alpha)         f, same: x if x > 0 else alpha * x
    where(c, a, b)               c bool; a, b any, same; the result has a's dtype
    eq ne lt le gt ge            fiub, same → bool
    and or xor not               b → bool
    isnan                        f → bool         ("isinf", x, detect_positive, detect_negative) f → bool
    bitwise_and bitwise_or bitwise_xor bitwise_not   iub, same
    bitshift_left bitshift_right iu, same; shifts outside [0, bits) give 0 (right: the sign fill)
    cast:<dtype>                 any → dtype ("cast:float16"; float → int truncates, → bool is != 0)
    identity                     any, same

Values are computed in their dtype, except fp16/bf16, which are held in fp32 between nodes (one
rounding when stored; an explicit cast:float16 inside an expression rounds there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..runtime.dtypes import DType, dtype as to_dtype
from ..runtime.errors import ArgumentError, UnsupportedError

KIND_CODE = {"float": "f", "int": "i", "uint": "u", "bool": "b"}
KIND_WORDS = {"f": "float", "i": "signed integer", "u": "unsigned integer", "b": "bool"}


def compute_name(t: DType) -> str:
    """The kernel type a value of dtype t is held in between nodes."""
    return "fp32" if t.name in ("fp16", "bf16") else t.name


@dataclass(frozen=True)
class Fn:
    """One function of the table: how many sub-expressions (then plain attribute values) it
    takes, the dtype kinds of its first operand, its result ("same" or "bool"), and its code."""

    arity: int
    kinds: str
    result: str
    emit: Callable  # (arg names, arg dtypes, attrs) -> kernel expression text
    n_attrs: int = 0


def _fmt(text: str):
    return lambda a, t, at: text.format(*a)


def _by_kind(f: str, i: str, u: str):
    """Code that depends on the first operand's kind (float / signed / unsigned)."""
    return lambda a, t, at: {"f": f, "i": i, "u": u}[KIND_CODE[t[0].kind]].format(*a)


def _wide(name: str):
    """A function computed in fp64 (ew_lib's *64 helpers) and brought back to the compute type."""
    return lambda a, t, at: f'kl.cast(L.{name}64(kl.cast({a[0]}, "fp64")), "{compute_name(t[0])}")'


def _pow(a, t, at):
    base, ex = t
    if base.is_floating:
        return f'kl.pow({a[0]}, kl.cast({a[1]}, "{compute_name(base)}"))'
    if ex.is_floating:  # numpy computes int ** float in fp64, then truncates to the base's type
        return f'kl.cast(kl.pow(kl.cast({a[0]}, "fp64"), kl.cast({a[1]}, "fp64")), "{base.name}")'
    return f"L.ipow({a[0]}, {a[1]}, {ex.bits}, {base.kind == 'int'}, {ex.kind == 'int'})"


def _sign(a, t, at):
    if t[0].kind == "uint":
        return f"kl.where({a[0]} > 0, 1, {a[0]})"
    return f"L.sign({a[0]})"


def _bitwise_not(a, t, at):
    if t[0].kind == "uint":  # ~ would xor with -1, which an unsigned type cannot hold
        return f'{a[0]} ^ kl.full((), {(1 << t[0].bits) - 1}, "{t[0].name}")'
    return f"~{a[0]}"


def _isinf(a, t, at):
    pos, neg = bool(at[0]), bool(at[1])
    x = a[0]
    if pos and neg:
        return f"kl.abs({x}) == INF"
    if pos:
        return f"{x} == INF"
    if neg:
        return f"{x} == NEG_INF"
    return f"{x} > INF"  # never true (NaN compares false too)


_F = ("exp", "log", "sqrt", "erf", "tanh", "sigmoid", "sin", "cos", "tan", "floor", "ceil", "expm1", "log1p")
_WIDE = ("asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh")
_CMP = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}

TABLE: dict[str, Fn] = {
    "add": Fn(2, "fiu", "same", _fmt("{0} + {1}")),
    "sub": Fn(2, "fiu", "same", _fmt("{0} - {1}")),
    "mul": Fn(2, "fiu", "same", _fmt("{0} * {1}")),
    "div": Fn(2, "fiu", "same", _by_kind("{0} / {1}", "L.sdiv({0}, {1})", "L.udiv({0}, {1})")),
    "mod": Fn(2, "fiu", "same", _by_kind("L.fmod_floor({0}, {1})", "L.smod({0}, {1})", "L.urem({0}, {1})")),
    "fmod": Fn(2, "fiu", "same", _by_kind("{0} % {1}", "L.srem({0}, {1})", "L.urem({0}, {1})")),
    "pow": Fn(2, "fiu", "same", _pow),
    "neg": Fn(1, "fi", "same", _fmt("-{0}")),
    "abs": Fn(1, "fiu", "same", _fmt("kl.abs({0})")),
    "sign": Fn(1, "fiu", "same", _sign),
    "relu": Fn(1, "fi", "same", _fmt("kl.maximum({0}, 0)")),
    "reciprocal": Fn(1, "f", "same", _fmt("1.0 / {0}")),
    "round": Fn(1, "f", "same", _fmt("L.round_even({0})")),
    "softplus": Fn(1, "f", "same", _fmt("L.softplus({0})")),
    "softsign": Fn(1, "f", "same", _fmt("{0} / (1.0 + kl.abs({0}))")),
    "gelu": Fn(1, "f", "same", _fmt("0.5 * {0} * (1.0 + kl.erf({0} * 0.7071067811865476))")),
    "gelu_tanh": Fn(1, "f", "same", _fmt(
        "0.5 * {0} * (1.0 + kl.tanh(0.7978845608028654 * ({0} + 0.044715 * {0} * {0} * {0})))")),
    "max": Fn(2, "fiub", "same", _fmt("kl.maximum({0}, {1})")),
    "min": Fn(2, "fiub", "same", _fmt("kl.minimum({0}, {1})")),
    "clip": Fn(3, "fiu", "same", _fmt("kl.minimum(kl.maximum({0}, {1}), {2})")),
    "leaky_relu": Fn(2, "f", "same", _fmt("kl.where({0} > 0, {0}, {0} * {1})")),
    "where": Fn(3, "b", "same", _fmt("kl.where({0}, {1}, {2})")),
    "and": Fn(2, "b", "bool", _fmt("{0} & {1}")),
    "or": Fn(2, "b", "bool", _fmt("{0} | {1}")),
    "xor": Fn(2, "b", "bool", _fmt("{0} ^ {1}")),
    "not": Fn(1, "b", "bool", _fmt("~{0}")),
    "isnan": Fn(1, "f", "bool", _fmt("{0} != {0}")),
    "isinf": Fn(1, "f", "bool", _isinf, n_attrs=2),
    "bitwise_and": Fn(2, "iub", "same", _fmt("{0} & {1}")),
    "bitwise_or": Fn(2, "iub", "same", _fmt("{0} | {1}")),
    "bitwise_xor": Fn(2, "iub", "same", _fmt("{0} ^ {1}")),
    "bitwise_not": Fn(1, "iub", "same", _bitwise_not),
    "bitshift_left": Fn(2, "iu", "same", lambda a, t, at: f"L.shl({a[0]}, {a[1]}, {t[0].bits})"),
    "bitshift_right": Fn(2, "iu", "same",
                         lambda a, t, at: f"L.shr({a[0]}, {a[1]}, {t[0].bits}, {t[0].kind == 'int'})"),
    "identity": Fn(1, "fiub", "same", _fmt("{0}")),
}
TABLE.update({n: Fn(1, "f", "same", _fmt(f"kl.{n}({{0}})")) for n in _F})
TABLE.update({n: Fn(1, "f", "same", _wide(n)) for n in _WIDE})
TABLE.update({n: Fn(2, "fiub", "bool", _fmt(f"{{0}} {op} {{1}}")) for n, op in _CMP.items()})


# ----------------------------------------------------------------------------------- typing


def node_type(head: str, args: list[DType], attrs: tuple) -> DType:
    """The dtype of (head, args...) given its operands' dtypes; raises for dtypes it refuses."""
    if head.startswith("cast:"):
        if len(args) != 1 or attrs:
            raise ArgumentError(f"element-wise {head}: takes one operand, got {len(args)}")
        return to_dtype(head[5:])
    fn = TABLE.get(head)
    if fn is None:
        raise ArgumentError(f"element-wise: unknown function {head!r}",
                            hint=f"known: {', '.join(sorted(TABLE))}, cast:<dtype>")
    if len(args) != fn.arity or len(attrs) != fn.n_attrs:
        raise ArgumentError(f"element-wise {head}: takes {fn.arity} operand(s) and {fn.n_attrs} attribute(s), "
                            f"got {len(args)} and {len(attrs)}")
    _check_kind(head, args[0], fn.kinds)
    same = args[1:] if head != "where" else args[2:]
    first = args[0] if head != "where" else args[1]
    if head == "pow":
        _check_kind(head, args[1], "fiu")
    else:
        for t in same:
            if t != first:
                raise ArgumentError(f"element-wise {head}: operands have dtypes {first.np.name} and {t.np.name}",
                                    hint="cast them to one dtype first")
    return to_dtype("bool") if fn.result == "bool" else first


def _check_kind(head: str, t: DType, kinds: str) -> None:
    if KIND_CODE[t.kind] not in kinds:
        allowed = ", ".join(KIND_WORDS[k] for k in kinds)
        raise UnsupportedError(f"element-wise {head} does not support {t.np.name} operands",
                               hint=f"{head} takes {allowed} values")


def split(expr) -> tuple[str, list, tuple]:
    """(head, sub-expressions, attribute values) of a function node."""
    if not isinstance(expr, tuple) or not expr or not isinstance(expr[0], str):
        raise ArgumentError(f"element-wise: {expr!r} is not an expression",
                            hint='expressions are tuples: ("in", i), ("const", v, dtype), (fn, arg, ...)')
    head = expr[0]
    subs = [a for a in expr[1:] if isinstance(a, tuple)]
    attrs = tuple(a for a in expr[1:] if not isinstance(a, tuple))
    return head, subs, attrs


def leaf_type(expr, in_dtypes) -> DType | None:
    """The dtype of an ("in", i) or ("const", v, dtype) leaf; None for function nodes."""
    head = expr[0]
    if head == "in":
        if len(expr) != 2 or not isinstance(expr[1], (int, np.integer)) or not 0 <= expr[1] < len(in_dtypes):
            raise ArgumentError(f"element-wise: {expr!r} names no input (there are {len(in_dtypes)})")
        return in_dtypes[expr[1]]
    if head == "const":
        if len(expr) != 3:
            raise ArgumentError(f"element-wise: a constant is ('const', value, dtype), got {expr!r}")
        return to_dtype(expr[2])
    return None


def type_of(expr, in_dtypes, memo: dict) -> DType:
    """The dtype of an expression (memoised per sub-expression)."""
    key = id(expr)
    if key in memo:
        return memo[key][1]
    head, subs, attrs = split(expr)
    t = leaf_type(expr, in_dtypes) if head in ("in", "const") else None
    if t is None:
        t = node_type(head, [type_of(s, in_dtypes, memo) for s in subs], attrs)
    memo[key] = (expr, t)  # keep expr alive so its id stays unique
    return t


def const_literal(value, t: DType) -> str:
    """Python source for a constant rounded to dtype t (module-level, so the kernel sees a number)."""
    try:
        v = np.asarray(value).astype(t.np).reshape(())
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"element-wise: constant {value!r} is not a {t.np.name} ({e})") from None
    if t.is_floating:
        return f'float.fromhex("{float(v).hex()}")'
    if t.kind == "bool":
        return repr(bool(v))
    return repr(int(v))
