"""IR text in and out: the `ky` dialect with upstream builtin/func/arith/math/scf, in MLIR syntax.

`print_module` writes locations (`loc("kernel.py":12:4)`) so every op keeps the user's line;
`parse_module` reads it back, and `print_module(parse_module(t)) == t` for text we printed.
Errors are `IRParseError`/`IRVerifyError` naming the line and the op.
"""

from __future__ import annotations

import io

from xdsl.context import Context
from xdsl.dialects import builtin, func, math, scf
from xdsl.dialects.builtin import FileLineColLoc, ModuleOp
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import DiagnosticException, ParseError, VerifyException

from ..runtime.errors import IRParseError, IRVerifyError
from .arith_ext import Arith
from .ky import Ky


def context() -> Context:
    ctx = Context()
    for d in (builtin.Builtin, func.Func, Arith, math.Math, scf.Scf, Ky):
        ctx.load_dialect(d)
    return ctx


class _Printer(Printer):
    """xDSL's printer, except that ops with a custom syntax (scf.while) that print their type
    through `print_operation_type` do not get their location twice, once mid-op where the
    parser cannot read it; the location still follows the whole op."""

    def print_operation_type(self, op: Operation) -> None:
        if self.print_debuginfo and not self.print_generic_format and type(op).print is not Operation.print:
            self.print_function_type(op.operand_types, op.result_types)
            return
        super().print_operation_type(op)


def print_module(module: ModuleOp, *, locations: bool = True) -> str:
    out = io.StringIO()
    _Printer(stream=out, print_debuginfo=locations).print_op(module)
    # Unknown locations carry no information; leaving them out keeps dumps readable.
    return out.getvalue().replace(" loc(unknown)", "") + "\n"


def op_location(op) -> str | None:
    """The user's "file:line" recorded on an op, if any."""
    loc = getattr(op, "location", None)
    if isinstance(loc, FileLineColLoc):
        return f"{loc.filename.data}:{loc.line.data}"
    return None


def parse_module(text: str, *, filename: str = "<ir>", verify: bool = True) -> ModuleOp:
    try:
        module = Parser(context(), text, name=filename).parse_module()
    except ParseError as e:
        raise IRParseError(str(e).strip(), hint="check the IR against docs/ir.md") from None
    if verify:
        verify_module(module, filename=filename)
    return module


def verify_module(module: ModuleOp, *, filename: str = "<ir>") -> None:
    try:
        module.verify()
    except (VerifyException, DiagnosticException) as e:
        bad = _find_bad_op(module)
        where = op_location(bad) if bad is not None else None
        name = bad.name if bad is not None else "module"
        raise IRVerifyError(f"{name}: {str(e).splitlines()[0]}", loc=where or filename,
                            hint="see the op's verifier rules in docs/ir.md") from None


def _find_bad_op(module: ModuleOp):
    for op in module.walk():
        try:
            op.verify_()
        except Exception:
            return op
    return None
