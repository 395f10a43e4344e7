"""What the neural-network operator definitions (nn_*.py) share: reading ONNX attributes, dtype
checks that name the op, zero-copy views of numpy arrays and `ky.Tensor`s, scratch memory, and
the spatial padding rules (auto_pad) that Conv and the pooling operators have in common.

Views matter because `OpDef.run` receives numpy arrays on host devices and `ky.Tensor`s
elsewhere: a transposed or reshaped operand must be the same memory seen through other strides,
whatever kind of array it is, so that the kernels read it in place.
"""

from __future__ import annotations

import numpy as np

from ..runtime.dtypes import dtype as to_dtype
from ..runtime.errors import ArgumentError, UnsupportedError
from ..runtime.factories import empty
from ..runtime.registry import default_device
from ..runtime.tensor import Tensor
from .schema import TensorType

FLOATS = ("fp32", "fp64", "fp16", "bf16")  # kaiyuan's names, as kernels and checks use them
NUM_OUTPUTS = "_num_outputs"  # attribute the graph engine fills with a node's output count


def np_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """numpy's names of kaiyuan dtypes (OpDef.dtypes lists numpy names)."""
    return tuple(to_dtype(n).np.name for n in names)


def text(v) -> str:
    """A string attribute (the importer may hand over bytes, as onnx.helper stores them)."""
    return v.decode() if isinstance(v, (bytes, bytearray)) else str(v)


def ints(v) -> tuple[int, ...] | None:
    return None if v is None else tuple(int(i) for i in v)


def kind(op: str, dt, what: str = "input") -> str:
    """kaiyuan's name of a numpy dtype; an UnsupportedError naming the op for others."""
    try:
        return to_dtype(dt).name
    except UnsupportedError:
        raise UnsupportedError(f"{op}: {what} has dtype {np.dtype(dt)}, which kaiyuan does not have") from None


def require(op: str, dt, allowed: tuple[str, ...], what: str = "input") -> str:
    name = kind(op, dt, what)
    if name not in allowed:  # named as numpy/ONNX users know them
        raise UnsupportedError(f"{op}: {what} has dtype {to_dtype(name).np.name}, which {op} does not support",
                               hint=f"supported: {', '.join(np_names(allowed))}")
    return name


def same_dtype(op: str, types: list, names: list[str]) -> None:
    first = types[0]
    for t, n in zip(types[1:], names[1:]):
        if t is not None and t.dtype != first.dtype:
            raise UnsupportedError(f"{op}: {names[0]} is {first.dtype} but {n} is {t.dtype}",
                                   hint="ONNX requires one dtype for these inputs")


def broadcasts_to(shape, target) -> bool:
    """Whether `shape` broadcasts (numpy rules, one way) to `target`."""
    try:
        return np.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)
    except ValueError:
        return False


def out_type(dt, shape) -> TensorType:
    return TensorType(np.dtype(dt), tuple(int(n) for n in shape))


# ------------------------------------------------------------------------------ views and memory


def shape_of(x) -> tuple:
    return tuple(x.shape)


def strides_of(x) -> tuple:
    """Strides in elements."""
    if isinstance(x, Tensor):
        return tuple(x.stride())
    return tuple(s // x.itemsize for s in x.strides)


def view(x, shape, strides):
    """The memory of x (numpy array or ky.Tensor) seen with `shape` and `strides` (in elements)."""
    shape, strides = tuple(int(n) for n in shape), tuple(int(s) for s in strides)
    if isinstance(x, Tensor):
        return Tensor(x.buffer, shape, x.dtype, strides, x.offset)
    return np.lib.stride_tricks.as_strided(x, shape, tuple(s * x.itemsize for s in strides), writeable=True)


def permute(x, perm):
    shape, strides = shape_of(x), strides_of(x)
    return view(x, [shape[p] for p in perm], [strides[p] for p in perm])


def unsqueeze(x, axis: int):
    """x with a size-1 dim inserted at `axis` (a view)."""
    shape, strides = list(shape_of(x)), list(strides_of(x))
    shape.insert(axis, 1)
    strides.insert(axis, 0)
    return view(x, shape, strides)


def is_reference(x) -> bool:
    """Whether x's device (the default device for numpy arrays) is a reference device (interp):
    ops launch small fixed tiles there."""
    return (x.device if isinstance(x, Tensor) else default_device()).is_reference


def scratch(like, shape, dt):
    """Uninitialised contiguous memory on `like`'s device, of the same kind as `like`."""
    if isinstance(like, Tensor):
        return empty(tuple(shape), to_dtype(dt), like.device)
    return np.empty(tuple(shape), to_dtype(dt).np)


# ------------------------------------------------------------------------------ spatial padding


def spatial_attrs(op: str, attrs: dict, x_spatial: tuple, kernel: tuple):
    """(strides, dilations, pads as [(begin, end), ...]) from ONNX attributes, for `kernel`
    (the spatial kernel sizes) on an input with spatial sizes `x_spatial`; auto_pad resolved as
    the ONNX spec says (SAME_UPPER: the odd padding at the end, SAME_LOWER: at the beginning)."""
    nd = len(x_spatial)
    strides = ints(attrs.get("strides")) or (1,) * nd
    dil = ints(attrs.get("dilations")) or (1,) * nd
    pads = ints(attrs.get("pads")) or (0,) * (2 * nd)
    if len(strides) != nd or len(dil) != nd or len(pads) != 2 * nd:
        raise ArgumentError(f"{op}: strides {strides}, dilations {dil} and pads {pads} do not fit "
                            f"{nd} spatial dims")
    if min(strides) < 1 or min(dil) < 1:
        raise ArgumentError(f"{op}: strides {strides} and dilations {dil} must be positive")
    auto = text(attrs.get("auto_pad", "NOTSET"))
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    if auto in ("NOTSET", ""):
        if min(pads) < 0:
            raise ArgumentError(f"{op}: negative pads {pads}")
        return strides, dil, [(pads[i], pads[i + nd]) for i in range(nd)]
    if auto == "VALID":
        return strides, dil, [(0, 0)] * nd
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for n, s, e in zip(x_spatial, strides, eff):
            total = max(0, (-(-n // s) - 1) * s + e - n)
            small = total // 2
            out.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
        return strides, dil, out
    raise UnsupportedError(f"{op}: auto_pad {auto!r} is not supported",
                           hint="use NOTSET, SAME_UPPER, SAME_LOWER or VALID")
