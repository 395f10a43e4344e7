"""The values a kernel computes with, as the frontend sees them while it writes IR.

`tensor` wraps one SSA value of the IR (a scalar or a tile) with its language type: an element
type (a runtime `DType`, or a `pointer_type`) and a static shape (`()` for scalars). Python
operators on tensors call `semantic`, which emits the IR. `constexpr` wraps a value known at
compile time; arithmetic on two constexprs folds in Python and never reaches the IR.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..runtime import dtypes as _dt
from ..runtime.dtypes import DType


@dataclass(frozen=True)
class pointer_type:
    """Type of a pointer to elements of `element_ty` (Triton's `tl.pointer_type`)."""

    element_ty: DType

    @property
    def name(self) -> str:
        return "*" + self.element_ty.name

    def is_ptr(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"pointer<{self.element_ty.name}>"


def is_ptr(t) -> bool:
    return isinstance(t, pointer_type)


class constexpr:
    """A compile-time constant: kernel parameters annotated `kl.constexpr`, literals, and
    anything computed from them. Used as an annotation, it marks a parameter to specialise on."""

    def __init__(self, value):
        self.value = value.value if isinstance(value, constexpr) else value

    def __repr__(self) -> str:
        return f"constexpr[{self.value!r}]"

    def __bool__(self):
        return bool(self.value)

    def __index__(self):
        return int(self.value)

    def __int__(self):
        return int(self.value)

    def __float__(self):
        return float(self.value)

    def __hash__(self):
        return hash(self.value)

    def __eq__(self, other):  # used by Python code at compile time (e.g. `if BLOCK == 16:`)
        return self.value == _unwrap(other)

    def __call__(self, *args, **kwargs):
        return self.value(*args, **kwargs)


def _unwrap(x):
    return x.value if isinstance(x, constexpr) else x


class tensor:
    """A scalar or tile value inside a kernel being compiled."""

    def __init__(self, handle, dtype, shape: tuple[int, ...] = ()):
        self.handle = handle  # xDSL SSAValue
        self.dtype = dtype  # DType or pointer_type
        self.shape = tuple(shape)
        self.type = dtype  # Triton code sometimes says x.type.element_ty

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def is_block(self) -> bool:
        return bool(self.shape)

    def __repr__(self) -> str:
        return f"tensor<{'x'.join(map(str, self.shape)) or 'scalar'}, {self.dtype!r}>"

    def __bool__(self):
        from ..runtime.errors import ConstexprError

        raise ConstexprError(
            "a run-time value was used where Python needs a compile-time bool",
            hint="use `if` on a scalar tensor (becomes scf.if), kl.where for tiles, or make it constexpr",
        )

    # Operators: each defers to semantic (imported lazily: semantic imports this module).
    def _bin(name, reverse=False):
        def op(self, other):
            from . import semantic

            return semantic.binary(name, other, self) if reverse else semantic.binary(name, self, other)

        return op

    __add__, __radd__ = _bin("add"), _bin("add", True)
    __sub__, __rsub__ = _bin("sub"), _bin("sub", True)
    __mul__, __rmul__ = _bin("mul"), _bin("mul", True)
    __truediv__, __rtruediv__ = _bin("truediv"), _bin("truediv", True)
    __floordiv__, __rfloordiv__ = _bin("floordiv"), _bin("floordiv", True)
    __mod__, __rmod__ = _bin("mod"), _bin("mod", True)
    __and__, __rand__ = _bin("and"), _bin("and", True)
    __or__, __ror__ = _bin("or"), _bin("or", True)
    __xor__, __rxor__ = _bin("xor"), _bin("xor", True)
    __lshift__, __rlshift__ = _bin("shl"), _bin("shl", True)
    __rshift__, __rrshift__ = _bin("shr"), _bin("shr", True)
    __lt__, __le__ = _bin("lt"), _bin("le")
    __gt__, __ge__ = _bin("gt"), _bin("ge")
    __eq__, __ne__ = _bin("eq"), _bin("ne")
    __hash__ = object.__hash__
    del _bin

    def __neg__(self):
        from . import semantic

        return semantic.neg(self)

    def __pos__(self):
        return self

    def __invert__(self):
        from . import semantic

        return semantic.invert(self)

    def __getitem__(self, slices):
        from . import semantic

        return semantic.subscript(self, slices)

    def to(self, dtype, bitcast: bool = False, **_):
        from . import semantic

        return semantic.cast(self, dtype, bitcast=bitcast)

    @property
    def T(self):
        from . import semantic

        return semantic.trans(self)

    def __getattr__(self, name):
        # tensor methods named like builtins: x.sum(axis=0), x.reshape(...), x.exp() ...
        from . import builtins

        fn = getattr(builtins, name, None)
        if fn is None or name.startswith("_"):
            raise AttributeError(name)
        return lambda *a, **k: fn(self, *a, **k)


# Element types under Triton's names; signatures use the short names ("fp32", "i32", ...).
float16, bfloat16, float32, float64 = _dt.float16, _dt.bfloat16, _dt.float32, _dt.float64
int1 = _dt.bool_
int8, int16, int32, int64 = _dt.int8, _dt.int16, _dt.int32, _dt.int64
uint8, uint16, uint32, uint64 = _dt.uint8, _dt.uint16, _dt.uint32, _dt.uint64
dtype = DType
