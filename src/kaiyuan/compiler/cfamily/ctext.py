"""Small helpers for writing C text: string literals and row-major flat indices."""

from __future__ import annotations


def c_string(s: str) -> str:
    """A C string literal of `s` (UTF-8; anything not plain printable ASCII as an octal escape)."""
    out = []
    for ch in s.encode("utf-8"):
        c = chr(ch)
        out.append(c if 32 <= ch < 127 and c not in '"\\?' else f"\\{ch:03o}")
    return '"' + "".join(out) + '"'


def flat(idx, shape) -> str:
    """Row-major flat index of the multi-index `idx` (C expressions) in `shape`."""
    if not shape:
        return "0"
    e = str(idx[0])
    for i, n in zip(idx[1:], shape[1:]):
        e = f"({e}) * {n} + {i}"
    return e
