"""The ops the cpu backend implements; anything else is an UnsupportedError at compile time."""

from __future__ import annotations

from ...ir.text import op_location
from ...runtime.errors import UnsupportedError
from ...compiler.cfamily.elementwise import CASTS, MATH_LIBM

SUPPORTED = {
    "func.func", "func.return",
    "ky.program_id", "ky.num_programs", "ky.make_range", "ky.splat", "ky.broadcast", "ky.expand_dims",
    "ky.reshape", "ky.trans", "ky.addptr", "ky.load", "ky.store", "ky.atomic_rmw", "ky.atomic_cas", "ky.dot",
    "ky.reduce", "ky.scan", "ky.yield", "ky.print", "ky.assert",
    "arith.constant", "arith.addi", "arith.subi", "arith.muli", "arith.divsi", "arith.divui", "arith.remsi",
    "arith.remui", "arith.andi", "arith.ori", "arith.xori", "arith.shli", "arith.shrsi", "arith.shrui",
    "arith.maxsi", "arith.minsi", "arith.maxui", "arith.minui", "arith.addf", "arith.subf", "arith.mulf",
    "arith.divf", "arith.remf", "arith.negf", "arith.maximumf", "arith.minimumf", "arith.maxnumf",
    "arith.minnumf", "arith.cmpi", "arith.cmpf", "arith.select", "math.rsqrt", "math.absi",
    "scf.for", "scf.if", "scf.while", "scf.yield", "scf.condition",
} | CASTS | set(MATH_LIBM)


def check_supported(func_op) -> None:
    for op in func_op.walk():
        if op.name not in SUPPORTED:
            raise UnsupportedError(f"op {op.name} is not supported by the cpu backend", loc=op_location(op),
                                   hint="use an op listed in docs/ir.md, or run on device 'interp'")
