"""The ops the C-family emitters (cpu's C, the SIMT emitter's OpenCL C and CUDA C) implement;
anything else is an UnsupportedError at compile time, naming the op's line."""

from __future__ import annotations

from ...ir.text import op_location
from ...runtime.errors import UnsupportedError
from .elementwise import CASTS, MATH_LIBM

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


def check_supported(func_op, backend: str, float64: bool = True) -> None:
    """Every op is one the emitters know, and no value is f64 when the device lacks it."""
    for op in func_op.walk():
        if op.name not in SUPPORTED:
            raise UnsupportedError(f"op {op.name} is not supported by the {backend} backend", loc=op_location(op),
                                   hint="use an op listed in docs/ir.md, or run on device 'interp'")
        if not float64 and any("f64" in str(v.type) for v in list(op.results) + list(op.operands)):
            raise UnsupportedError(f"{op.name}: float64 is not supported by this {backend} device",
                                   loc=op_location(op), hint="use float32, or run on device 'cpu'")


def combine(em, op, accs: list[str], xs: list[str]) -> None:
    """Emit a ky.reduce/ky.scan combiner region inlined: accs[k] = combiner(accs, xs)[k]. `em` is
    the emitter (its line/bind/assign/emit_op and depth)."""
    block = op.combiner.blocks[0]
    em.line("{")
    em.depth += 1
    em.bind(block.args, accs + xs)
    for inner in block.ops:
        if inner.name == "ky.yield":
            em.assign(accs, list(inner.operands))
        else:
            em.emit_op(inner)
    em.depth -= 1
    em.line("}")
