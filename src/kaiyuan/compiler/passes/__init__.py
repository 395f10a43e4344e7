"""Target-independent passes over `ky` modules (IR text in, IR text out; see tests/compiler)."""

from .simplify import simplify

__all__ = ["simplify"]
