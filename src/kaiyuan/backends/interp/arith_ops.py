"""`arith` ops on scalars and tiles.

Integers are signless two's complement and wrap (numpy does; warnings are silenced for the
launch). Unsigned ops view the operands as uintN, compute, and view the result back. f16/bf16
arithmetic is done in f32 and rounded to the result type after every op. Integer division by zero
raises DeviceAssertError (the contract leaves it undefined; the reference reports it).
"""

from __future__ import annotations

import numpy as np

from ...ir.text import op_location
from ...runtime.errors import DeviceAssertError, UnsupportedError
from .memory import select as ptr_select
from .registry import lowers
from .irtypes import F32, F64, NARROW_FLOATS, compute_dtype, is_ptr, np_dtype, scalar, unsigned


def _dt(op):
    return np_dtype(op.results[0].type)


def _elementwise(op, cx, fn):
    ins = [cx.slot(v) for v in op.operands]
    r = cx.slot(op.results[0])
    if len(ins) == 1:
        (a,) = ins

        def step1(env):
            env[r] = fn(env[a])

        return step1
    if len(ins) == 2:
        a, b = ins

        def step2(env):
            env[r] = fn(env[a], env[b])

        return step2
    a, b, c = ins

    def step3(env):
        env[r] = fn(env[a], env[b], env[c])

    return step3


def in_compute_dtype(fn, dt):
    """fn evaluated in f32 for f16/bf16 values, rounded back to `dt`."""
    if dt not in NARROW_FLOATS:
        return fn
    return lambda *xs: fn(*(x.astype(F32) for x in xs)).astype(dt)


def as_unsigned(fn, dt):
    u = unsigned(dt)
    return lambda *xs: fn(*(x.view(u) for x in xs)).view(dt)


# ------------------------------------------------------------------------------------- constants


@lowers("arith.constant")
def constant(op, cx):
    dt, attr, r = _dt(op), op.value, cx.slot(op.results[0])
    if hasattr(attr, "get_values"):  # dense tile constant (the frontend splats instead; accepted anyway)
        shape = tuple(op.results[0].type.get_shape())
        value = np.broadcast_to(np.array(list(attr.get_values()), dtype=F64 if dt.kind == "f" else object)
                                .astype(dt), shape)
    else:
        value = scalar(attr.value.data, dt)

    def step(env):
        env[r] = value

    return step


# ------------------------------------------------------------------------------------ arithmetic

_FLOAT_BINARY = {"arith.addf": np.add, "arith.subf": np.subtract, "arith.mulf": np.multiply,
                 "arith.divf": np.divide, "arith.remf": np.fmod, "arith.maximumf": np.maximum,
                 "arith.minimumf": np.minimum, "arith.maxnumf": np.fmax, "arith.minnumf": np.fmin}


@lowers(*_FLOAT_BINARY)
def float_binary(op, cx):
    return _elementwise(op, cx, in_compute_dtype(_FLOAT_BINARY[op.name], _dt(op)))


@lowers("arith.negf")
def negf(op, cx):
    return _elementwise(op, cx, np.negative)  # exact in every float type


_INT_BINARY = {"arith.addi": np.add, "arith.subi": np.subtract, "arith.muli": np.multiply,
               "arith.andi": np.bitwise_and, "arith.ori": np.bitwise_or, "arith.xori": np.bitwise_xor,
               "arith.shli": np.left_shift, "arith.shrsi": np.right_shift,
               "arith.maxsi": np.maximum, "arith.minsi": np.minimum}
_BOOL_BINARY = {"arith.addi": np.logical_xor, "arith.subi": np.logical_xor, "arith.muli": np.logical_and,
                "arith.andi": np.logical_and, "arith.ori": np.logical_or, "arith.xori": np.logical_xor,
                "arith.shli": lambda a, b: np.logical_and(a, np.logical_not(b)),
                "arith.shrsi": lambda a, b: a, "arith.shrui": lambda a, b: np.logical_and(a, np.logical_not(b)),
                # as i1, true is -1 signed and 1 unsigned
                "arith.maxsi": np.logical_and, "arith.minsi": np.logical_or,
                "arith.maxui": np.logical_or, "arith.minui": np.logical_and}
_UNSIGNED_BINARY = {"arith.shrui": np.right_shift, "arith.maxui": np.maximum, "arith.minui": np.minimum}


@lowers(*_INT_BINARY, *_UNSIGNED_BINARY)
def int_binary(op, cx):
    dt = _dt(op)
    if dt == np.bool_:
        return _elementwise(op, cx, _BOOL_BINARY[op.name])
    if op.name in _UNSIGNED_BINARY:
        return _elementwise(op, cx, as_unsigned(_UNSIGNED_BINARY[op.name], dt))
    return _elementwise(op, cx, _INT_BINARY[op.name])


def _divsi(a, b):
    r = np.fmod(a, b)  # C remainder: sign of the dividend
    return (a - r) // b  # exact division, so floor == truncation


_DIVISION = {"arith.divsi": (_divsi, False), "arith.remsi": (np.fmod, False),
             "arith.divui": (np.floor_divide, True), "arith.remui": (np.remainder, True),
             "arith.floordivsi": (np.floor_divide, False)}


@lowers(*_DIVISION)
def int_division(op, cx):
    dt = _dt(op)
    fn, is_unsigned = _DIVISION[op.name]
    if dt == np.bool_:
        fn, is_unsigned = (lambda a, b: a) if op.name.startswith("arith.div") else (lambda a, b: np.logical_and(a, False)), False
    elif is_unsigned:
        fn = as_unsigned(fn, dt)
    loc, name = cx.loc(op), op.name

    def checked(a, b):
        if not np.all(b):
            x, y, z = cx.pid()
            raise DeviceAssertError(f"{name}: integer division by zero in program ({x}, {y}, {z})", loc=loc,
                                    hint="guard the divisor (e.g. with a where/select) before dividing")
        return fn(a, b).astype(dt, copy=False)

    return _elementwise(op, cx, checked)


# ------------------------------------------------------------------------------ compare, select

_CMPI = {"eq": np.equal, "ne": np.not_equal, "slt": np.less, "sle": np.less_equal, "sgt": np.greater,
         "sge": np.greater_equal, "ult": np.less, "ule": np.less_equal, "ugt": np.greater, "uge": np.greater_equal}


@lowers("arith.cmpi")
def cmpi(op, cx):
    pred = op.predicate_name
    dt = np_dtype(op.operands[0].type)
    fn = _CMPI[pred]
    if dt == np.bool_ and pred[0] == "s":  # signed i1: true is -1 < false
        return _elementwise(op, cx, lambda a, b: fn(np.negative(a.astype(np.int8)), np.negative(b.astype(np.int8))))
    if pred[0] == "u":
        u = unsigned(dt)
        return _elementwise(op, cx, lambda a, b: fn(a.view(u), b.view(u)))
    return _elementwise(op, cx, fn)


def _unordered(a, b):
    return np.isnan(a) | np.isnan(b)


_CMPF = {
    "oeq": np.equal, "ogt": np.greater, "oge": np.greater_equal, "olt": np.less, "ole": np.less_equal,
    "one": lambda a, b: np.less(a, b) | np.greater(a, b),
    "ord": lambda a, b: ~_unordered(a, b),
    "ueq": lambda a, b: np.equal(a, b) | _unordered(a, b),
    "ugt": lambda a, b: ~np.less_equal(a, b), "uge": lambda a, b: ~np.less(a, b),
    "ult": lambda a, b: ~np.greater_equal(a, b), "ule": lambda a, b: ~np.greater(a, b),
    "une": np.not_equal, "uno": _unordered,
    "false": lambda a, b: np.zeros(np.shape(a), np.bool_),
    "true": lambda a, b: np.ones(np.shape(a), np.bool_),
}


@lowers("arith.cmpf")
def cmpf(op, cx):
    dt = np_dtype(op.operands[0].type)
    return _elementwise(op, cx, in_compute_dtype_bool(_CMPF[op.predicate_name], dt))


def in_compute_dtype_bool(fn, dt):
    if dt not in NARROW_FLOATS:
        return fn
    return lambda a, b: fn(a.astype(F32), b.astype(F32))


@lowers("arith.select")
def select(op, cx):
    if is_ptr(op.results[0].type):
        return _elementwise(op, cx, ptr_select)
    return _elementwise(op, cx, np.where)


# ----------------------------------------------------------------------------------------- casts


def _cast(op):
    src, dst = np_dtype(op.operands[0].type), _dt(op)
    name = op.name
    if name == "arith.extsi":
        if src == np.bool_:
            return lambda x: np.negative(x.astype(dst))
        return lambda x: x.astype(dst)
    if name == "arith.extui":
        if src == np.bool_:
            return lambda x: x.astype(dst)
        return lambda x: x.view(unsigned(src)).astype(dst)
    if name == "arith.trunci":
        if dst == np.bool_:
            return lambda x: (x & 1).astype(np.bool_)
        return lambda x: x.astype(dst)
    if name in ("arith.sitofp", "arith.uitofp"):
        if src == np.bool_:
            sign = -1 if name == "arith.sitofp" else 1
            return lambda x: (x.astype(F64) * sign).astype(dst)
        via = F64 if dst in NARROW_FLOATS else dst
        if name == "arith.uitofp":
            return lambda x: x.view(unsigned(src)).astype(via).astype(dst)
        return lambda x: x.astype(via).astype(dst)
    if name in ("arith.fptosi", "arith.fptoui"):
        target = unsigned(dst) if name == "arith.fptoui" else dst
        c = compute_dtype(src)
        if dst == np.bool_:
            return lambda x: x.astype(c) != 0
        return lambda x: x.astype(c).astype(target).view(dst)
    if name in ("arith.extf", "arith.truncf"):
        return lambda x: x.astype(dst)
    if name == "arith.bitcast":
        if src.itemsize != dst.itemsize:
            raise UnsupportedError(f"arith.bitcast between {src} and {dst} changes the width", loc=op_location(op))
        return lambda x: x.view(dst)
    raise AssertionError(name)


@lowers("arith.extsi", "arith.extui", "arith.trunci", "arith.sitofp", "arith.uitofp", "arith.fptosi",
        "arith.fptoui", "arith.extf", "arith.truncf", "arith.bitcast")
def cast(op, cx):
    return _elementwise(op, cx, _cast(op))

