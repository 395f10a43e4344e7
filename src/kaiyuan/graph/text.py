"""Graph IR text in and out: MLIR syntax, with each op's node name as its location.

`print_ir` is deterministic (same module, same text) and `parse_ir(print_ir(m))` gives back the
same module. Malformed text is an `IRParseError` naming the line; a module that parses but breaks
an op's rules is an `IRVerifyError` naming the node.
"""

from __future__ import annotations

import io
import re

from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, ModuleOp, NameLoc
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import DiagnosticException, ParseError, VerifyException

from ..runtime.errors import IRParseError, IRVerifyError
from .attributes import needs_hex
from .dialect import GraphContext, node_name

_HINT = "check the IR against docs/graph.md"


class _Printer(Printer):
    """xDSL's printer, except that dense float data holding NaN or infinity is written as raw
    bytes (`dense<"0x...">`), the form xDSL's parser reads back exactly."""

    def print_attribute(self, attribute) -> None:
        if isinstance(attribute, DenseIntOrFPElementsAttr) and needs_hex(attribute):
            self.print_string(f'dense<"0x{attribute.data.data.hex().upper()}"> : ')
            self.print_attribute(attribute.get_type())
            return
        super().print_attribute(attribute)


def print_ir(module: ModuleOp) -> str:
    out = io.StringIO()
    _Printer(stream=out, print_debuginfo=True).print_op(module)
    # Unknown locations carry no information; leaving them out keeps the text readable.
    return out.getvalue().replace(" loc(unknown)", "") + "\n"


def parse_ir(text: str, filename: str = "<kyg>") -> ModuleOp:
    """Parse and verify graph IR text (IRParseError / IRVerifyError on bad input)."""
    parser = Parser(GraphContext(), text, name=filename)
    try:
        module = parser.parse_module()
    except ParseError as e:
        raise IRParseError(_undefined_value_line(str(e).strip(), text, filename), hint=_HINT) from None
    except Exception as e:  # noqa: BLE001 - xDSL raises ValueError/KeyError/... on some bad input
        line = text.count("\n", 0, min(getattr(parser, "pos", 0) or 0, len(text))) + 1
        raise IRParseError(f"{filename}:{line}: {type(e).__name__}: {e}", hint=_HINT) from None
    verify_ir(module, filename)
    return module


def verify_ir(module: ModuleOp, filename: str = "<kyg>") -> None:
    try:
        module.verify()
    except (VerifyException, DiagnosticException) as e:
        for op in module.walk():
            try:
                op.verify(verify_nested_ops=False)
            except Exception as err:  # noqa: BLE001 - any failure of this op's own rules
                loc = node_name(op) if isinstance(op.location, NameLoc) else filename
                raise IRVerifyError(_first_line(str(err)), loc=loc, hint=_HINT) from None
        raise IRVerifyError(_first_line(str(e)), loc=filename, hint=_HINT) from None


def _first_line(msg: str) -> str:
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    out = lines[0] if lines else "does not verify"
    if out.endswith(":") and len(lines) > 1:
        out += " " + lines[1]
    return out.removeprefix("Operation does not verify: ")


def _undefined_value_line(msg: str, text: str, filename: str) -> str:
    """xDSL reports values used but never defined at the end of the text; name the line of the
    first use instead."""
    m = re.search(r"values used but not defined: \[(%[^\],]+)", msg)
    if m:
        name = re.escape(m.group(1).strip("'\""))
        for i, line in enumerate(text.splitlines(), 1):
            if re.search(name + r"(?![\w$.-])", line) and not re.match(r"\s*" + name + r"(?![\w$.-])\s*[:=,]", line):
                return f"{filename}:{i}: value {m.group(1)} is used but never defined\n{line.strip()}"
    return msg
