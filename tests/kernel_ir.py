"""Shared helpers for the frontend, IR and compiler tests: compile kernels to `ky` IR text on the interp target,
and find the line of a `# <- NAME` marker in a test file (so expected lines never drift)."""

from __future__ import annotations

import re
from pathlib import Path

import kaiyuan as ky


def ky_ir(kernel, signature: dict, constants: dict | None = None) -> str:
    """The `ky` stage text (after simplify) of `kernel` compiled for the interp device."""
    return ky.compile(kernel, target="interp", signature=signature, constants=constants or {}).asm["ky"]


def raw_ir(kernel, signature: dict, constants: dict | None = None) -> str:
    """The frontend's module before any pass, printed."""
    from kaiyuan.compiler.jit import _hashable
    from kaiyuan.ir import print_module
    from kaiyuan.language.frontend import ParamSpec, build_kernel
    from kaiyuan.runtime.dtypes import dtype

    params = []
    for name in kernel.arg_names:
        if name in (constants or {}):
            params.append(ParamSpec(name, "constexpr", value=_hashable(constants[name])))
        else:
            t = signature[name]
            params.append(ParamSpec(name, "ptr" if t.startswith("*") else "scalar", dtype(t.lstrip("*"))))
    return print_module(build_kernel(kernel.fn, params, kernel.name))


def marker_line(path: str, name: str) -> int:
    """1-based line number of the line in `path` carrying the comment `# <- name`."""
    pat = re.compile(r"#\s*<-\s*" + re.escape(name) + r"\b")
    hits = [i for i, line in enumerate(Path(path).read_text().splitlines(), 1) if pat.search(line)]
    assert len(hits) == 1, f"marker {name!r} found {len(hits)} times in {path}"
    return hits[0]


def op_lines(text: str, opname: str) -> list[str]:
    """The lines of IR text that define or contain op `opname` (generic or custom syntax)."""
    return [ln for ln in text.splitlines() if re.search(r'(^|[\s"=])' + re.escape(opname) + r'("|\s|\(|$)', ln)]
