"""The ops the SIMT emitter implements: the C-family set (cfamily.support)."""

from __future__ import annotations

from ..cfamily.support import SUPPORTED, check_supported  # noqa: F401
