"""kaiyuan's error hierarchy.

Every error the user can cause is a `KaiyuanError` with a stable code (`KY-E...`), a message
that names the user's file and line (or node, rank, ...) where one is known, and a hint that
says what to do about it. Codes never change meaning once released; docs/errors.md lists them.
"""

from __future__ import annotations


class KaiyuanError(Exception):
    """Base class: `code`, `message`, `hint`, and `loc` ("file.py:12" of the user's source)."""

    code = "KY-E000"

    def __init__(self, message: str, *, hint: str | None = None, loc: str | None = None):
        self.message = message
        self.hint = hint
        self.loc = loc
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.loc}: " if self.loc else ""
        text = f"[{self.code}] {where}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class CompilationError(KaiyuanError):
    """A kernel could not be turned into IR or compiled (unsupported construct, type error)."""

    code = "KY-E100"


class ConstexprError(CompilationError):
    """A value that must be known at compile time is not."""

    code = "KY-E101"


class IRParseError(KaiyuanError):
    """IR text could not be parsed."""

    code = "KY-E110"


class IRVerifyError(KaiyuanError):
    """IR parsed but breaks an op's rules (wrong types, operand counts)."""

    code = "KY-E111"


class ToolchainError(CompilationError):
    """The backend's toolchain (the system C compiler, ...) failed or is missing."""

    code = "KY-E120"


class LaunchError(KaiyuanError):
    """A launch was malformed: wrong arguments, grid, devices."""

    code = "KY-E200"


class ArgumentError(LaunchError):
    """A kernel argument has the wrong count, type or dtype."""

    code = "KY-E201"


class MemoryAccessError(KaiyuanError):
    """A kernel loaded or stored outside its buffer (reported by the interp backend)."""

    code = "KY-E210"


class DeviceAssertError(KaiyuanError):
    """A `device_assert` in a kernel failed."""

    code = "KY-E220"


class UnsupportedError(KaiyuanError):
    """An op, dtype or feature is not supported by this backend or layer."""

    code = "KY-E300"


class OutOfMemoryError(KaiyuanError):
    """An allocation failed."""

    code = "KY-E400"


class DeviceError(KaiyuanError):
    """A device is unknown, absent, or failed."""

    code = "KY-E500"


class ModelError(KaiyuanError):
    """A model (an ONNX file or proto) cannot be read or imported: not a model, truncated, malformed."""

    code = "KY-E700"


class ModelFileError(ModelError):
    """A .kym model file cannot be written or read: not a model, truncated, tampered, too new."""

    code = "KY-E710"


class CacheError(KaiyuanError):
    """The on-disk kernel cache could not be used."""

    code = "KY-E600"


class CommError(KaiyuanError):
    """A collective or point-to-point operation failed: a rank died, never arrived, or timed out
    (kaiyuan.comm). `collective`, `ranks` (the group ranks at fault) and `reason` say which."""

    code = "KY-E800"

    def __init__(self, message: str, *, hint: str | None = None, loc: str | None = None,
                 collective: str | None = None, ranks=(), reason: str = "error"):
        self.collective = collective
        self.ranks = list(ranks)
        self.reason = reason
        super().__init__(message, hint=hint, loc=loc)


class CommMismatchError(CommError):
    """Ranks disagree about a collective: its kind, order, element count, dtype, op or root."""

    code = "KY-E801"


class TopologyError(KaiyuanError):
    """A topology or cost-model description is malformed (kaiyuan.comm.simulate, kaiyuan.comm.cost):
    a non-positive size or bandwidth, a negative latency, an unparsable topology spec."""

    code = "KY-E810"
