"""The ops the cpu backend implements: the C-family set (kaiyuan.compiler.cfamily.support)."""

from __future__ import annotations

from ...compiler.cfamily.support import SUPPORTED
from ...compiler.cfamily.support import check_supported as _check


def check_supported(func_op) -> None:
    _check(func_op, "cpu")


__all__ = ["SUPPORTED", "check_supported"]
