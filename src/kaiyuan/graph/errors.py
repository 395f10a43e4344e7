"""Naming the node an error comes from; `ModelError` (KY-E700) is re-exported for the importer."""

from __future__ import annotations

from contextlib import contextmanager

from ..runtime.errors import KaiyuanError, ModelError

__all__ = ["ModelError", "with_node", "with_prefix"]


@contextmanager
def with_node(op):
    """Re-raise a KaiyuanError raised inside (by an OpDef's infer, say) with the node named first,
    keeping its class and hint."""
    from .dialect import where

    with with_prefix(where(op)):
        yield


@contextmanager
def with_prefix(prefix: str):
    """Re-raise a KaiyuanError raised inside with `prefix` (`node 'x' (Op): `) before its message."""
    try:
        yield
    except KaiyuanError as e:
        if e.message.startswith(prefix):
            raise
        try:
            named = type(e)(prefix + e.message, hint=e.hint, loc=e.loc)
        except TypeError:  # a subclass with another constructor: keep the original
            raise e from None
        raise named from None
