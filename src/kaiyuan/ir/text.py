"""IR text in and out: the `ky` dialect with upstream builtin/func/arith/math/scf, in MLIR syntax.

`print_module` writes locations (`loc("kernel.py":12:4)`) so every op keeps the user's line;
`parse_module` reads it back, and `print_module(parse_module(t)) == t` for text we printed.
Errors are `IRParseError`/`IRVerifyError` naming the line and the op.
"""

from __future__ import annotations

import io
import re

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
    parser = Parser(context(), text, name=filename)
    try:
        module = parser.parse_module()
    except ParseError as e:
        raise IRParseError(_parse_message(str(e).strip(), text, filename), hint="check the IR against docs/ir.md") from None
    except Exception as e:  # noqa: BLE001 - xDSL raises ValueError/KeyError/... on some bad input
        msg = e.args[0] if isinstance(e, ValueError) and e.args and isinstance(e.args[0], str) else f"{type(e).__name__}: {e}"
        line = text.count("\n", 0, min(getattr(parser, "pos", 0) or 0, len(text))) + 1
        raise IRParseError(f"{filename}:{line}: {msg}", hint="check the IR against docs/ir.md") from None
    if verify:
        verify_module(module, filename=filename)
    return module


def _parse_message(msg: str, text: str, filename: str) -> str:
    """xDSL reports values used but never defined at the end of the text; name the line of the
    first use instead, so the message points at the offending op."""
    m = re.search(r"values used but not defined: \[(%[^\],]+)", msg)
    if m:
        name = re.escape(m.group(1))
        for i, line in enumerate(text.splitlines(), 1):
            if re.search(name + r"(?![\w$.-])", line) and not re.match(r"\s*" + name + r"(?![\w$.-])\s*[:=,]", line):
                return f"{filename}:{i}: {msg.splitlines()[-1]}\n{line}"
    return msg


def verify_module(module: ModuleOp, *, filename: str = "<ir>") -> None:
    try:
        module.verify()
    except (VerifyException, DiagnosticException) as e:
        bad, why = _find_bad_op(module)
        where = op_location(bad) if bad is not None else None
        name = bad.name if bad is not None else "module"
        msg = _first_lines(why or str(e))
        if not msg.startswith(name + ":"):
            msg = f"{name}: {msg}"
        raise IRVerifyError(msg, loc=where or filename, hint="see the op's verifier rules in docs/ir.md") from None


def _first_lines(msg: str) -> str:
    """The reason, without the op dump xDSL appends: first line, plus the next when the first
    only introduces it (`operand 'a' at position 0 does not verify:`)."""
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    if not lines:
        return "does not verify"
    out = lines[0]
    if out.endswith(":") and len(lines) > 1:
        out += " " + lines[1]
    return out.removeprefix("Operation does not verify: ")


def _find_bad_op(module: ModuleOp):
    """The innermost-first op that fails its own checks (nested ops are checked separately)."""
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except Exception as e:  # noqa: BLE001 - any verifier failure names this op
            return op, str(e)
    return None, None
