"""What every operator shares: reading its inputs, choosing the device, making its output.

An operator takes numpy arrays, `ky.Tensor`s, or DLPack objects (PyTorch CPU tensors) and returns
the same kind as its inputs: a `ky.Tensor` on the inputs' device when any input is one, a numpy
array otherwise (a torch tensor for torch inputs). Kernels receive the caller's memory as it is:
strides travel as kernel arguments (in elements), so transposed and strided inputs are not copied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..runtime.dtypes import DType, dtype as to_dtype
from ..runtime.errors import ArgumentError, UnsupportedError
from ..runtime.factories import empty
from ..runtime.registry import default_device
from ..runtime.tensor import Tensor, contiguous_strides

I32_MAX = 2**31 - 1


@dataclass
class Operand:
    """One input as a kernel sees it: `obj` (passed as the pointer: its element [0, ..., 0]),
    its shape, its strides in elements, and its DType."""

    obj: object
    shape: tuple
    strides: tuple
    dtype: DType
    name: str = "input"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def reshaped(self, shape, strides) -> "Operand":
        """The same memory seen with another shape (only size-1 dims inserted or dropped)."""
        return Operand(self.obj, tuple(shape), tuple(strides), self.dtype, self.name)

    def numpy(self) -> np.ndarray:
        return self.obj.numpy() if isinstance(self.obj, Tensor) else self.obj


class Context:
    """The device an op runs on and the kind of value it returns."""

    def __init__(self, op: str, args):
        self.op = op
        self.kind = "numpy"
        self.device = None
        for a in args:
            if isinstance(a, Tensor):
                if self.device is not None and a.device is not self.device:
                    raise ArgumentError(f"{op}: inputs are on different devices ({self.device.name}, {a.device.name})",
                                        hint="move them to one device with .to(device)")
                self.device, self.kind = a.device, "tensor"
            elif self.kind == "numpy" and type(a).__module__.startswith("torch"):
                self.kind = "torch"
        if self.device is None:
            self.device = default_device()
        if not self.device.is_host and any(isinstance(a, np.ndarray) for a in args):
            raise ArgumentError(f"{op}: numpy inputs cannot be used with tensors on {self.device.name}",
                                hint="make every input a ky.Tensor on that device")

    @property
    def is_reference(self) -> bool:
        """A reference device (interp runs the IR in numpy): ops use one small fixed config there."""
        return self.device.is_reference

    def operand(self, x, name: str) -> Operand:
        if isinstance(x, Tensor):
            return Operand(x, x.shape, x.stride(), x.dtype, name)
        if not isinstance(x, np.ndarray):
            if hasattr(x, "__dlpack__"):
                try:
                    x = np.from_dlpack(x)
                except (TypeError, RuntimeError, BufferError) as e:
                    raise UnsupportedError(f"{self.op}: {name} cannot be read through DLPack ({e})",
                                           hint="pass a numpy array or a ky.Tensor") from None
            else:
                x = np.asarray(x)
        dt = to_dtype(x.dtype)  # UnsupportedError for dtypes kaiyuan does not have
        if any(s % x.itemsize for s in x.strides):
            x = np.ascontiguousarray(x)
        return Operand(x, x.shape, tuple(s // x.itemsize for s in x.strides), dt, name)

    def output(self, shape, dtype) -> Operand:
        t = empty(tuple(shape), dtype, self.device)
        return Operand(t, t.shape, contiguous_strides(t.shape), t.dtype, "out")

    def result(self, out: Operand):
        """The output in the kind of value the caller gave."""
        t = out.obj
        if self.kind == "tensor":
            return t
        arr = t.numpy()
        if self.kind == "torch":
            import torch

            return torch.from_numpy(arr)
        return arr


def check_dtype(op: str, x: Operand, supported: tuple[str, ...]) -> None:
    if x.dtype.name not in supported:
        raise UnsupportedError(f"{op}: {x.name} has dtype {x.dtype.name}, which {op} does not support",
                               hint=f"supported dtypes: {', '.join(supported)}")


def check_same_dtype(op: str, *xs: Operand) -> None:
    first = xs[0]
    for x in xs[1:]:
        if x.dtype != first.dtype:
            raise UnsupportedError(f"{op}: {first.name} is {first.dtype.name} but {x.name} is {x.dtype.name}",
                                   hint="cast the inputs to one dtype first")


def check_offsets(op: str, *xs: Operand) -> None:
    """Kernels index with 32-bit offsets: refuse tensors whose elements lie further apart."""
    for x in xs:
        span = sum(abs(s) * (n - 1) for n, s in zip(x.shape, x.strides) if n > 0)
        if span > I32_MAX:
            raise UnsupportedError(f"{op}: {x.name} spans {span} elements; kernels use 32-bit offsets",
                                   hint="split the operation into parts of fewer than 2**31 elements")


def collapse(shape, *strides_list, max_dims: int | None = None):
    """Merge neighbouring dims that every stride list walks as one (and drop size-1 dims).

    Returns (shape, [strides, ...]); at least one dim (size 1) when everything collapsed away."""
    dims = [(n, [s[i] for s in strides_list]) for i, n in enumerate(shape) if n != 1]
    out: list = []
    for n, st in dims:
        if out:
            pn, pst = out[-1]
            if all(ps == s * n for ps, s in zip(pst, st)):
                out[-1] = (pn * n, st)
                continue
        out.append((n, st))
    if not out:
        out = [(1, [0] * len(strides_list))]
    shp = tuple(n for n, _ in out)
    sts = [tuple(st[j] for _, st in out) for j in range(len(strides_list))]
    return shp, sts


def broadcast_strides(x: Operand, dims: int, target) -> tuple:
    """Strides of x's first `dims` dims broadcast (numpy rules) to `target`: 0 on broadcast dims."""
    shape, strides = x.shape[:dims], x.strides[:dims]
    pad = len(target) - len(shape)
    return tuple(0 if i < pad or shape[i - pad] == 1 else strides[i - pad] for i in range(len(target)))


def pad_dims(dims: tuple, strides: tuple, count: int):
    """Left-pad (dims, strides) with size-1 dims to `count` dims."""
    k = count - len(dims)
    return (1,) * k + tuple(dims), (0,) * k + tuple(strides)


def pair(v, name: str, op: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(v)
    if len(v) == 1:
        return int(v[0]), int(v[0])
    if len(v) != 2:
        raise ArgumentError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    return int(v[0]), int(v[1])


def span(shape, strides) -> int:
    """Elements from a strided array's first element to its last, inclusive: every address in
    between is inside its allocation, so a kernel may read there (and drop what it read). 0 with a
    negative stride, so that nothing past the first element counts as inside."""
    if min(strides, default=0) < 0:
        return 0
    return 1 + sum((d - 1) * s for d, s in zip(shape, strides))


def next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def contiguous(x: Operand) -> Operand:
    """A contiguous copy of x's elements as x.shape/x.strides see them (used only by fallbacks)."""
    if isinstance(x.obj, Tensor):
        t = x.obj
        view = Tensor(t.buffer, x.shape, t.dtype, x.strides, t.offset)
        c = view.contiguous()
        return Operand(c, c.shape, contiguous_strides(c.shape), c.dtype, x.name)
    arr = x.obj
    view = np.lib.stride_tricks.as_strided(arr, x.shape, tuple(s * arr.itemsize for s in x.strides))
    c = np.ascontiguousarray(view)
    return Operand(c, c.shape, contiguous_strides(c.shape), x.dtype, x.name)


def rows_view(op: str, x: Operand, y: Operand, ncols_dims: int):
    """See x and y (same shape) as rows x cols: the last `ncols_dims` dims are one column dim, the
    others at most two row dims. Returns (x, (R0, R1, N), x strides (s0, s1, sc), y strides) — x may
    be a contiguous copy when its strides do not allow that view."""
    lead, tail = x.shape[: x.ndim - ncols_dims], x.shape[x.ndim - ncols_dims:]
    for attempt in range(2):
        cdims, cst = collapse(tail, x.strides[x.ndim - ncols_dims:], y.strides[y.ndim - ncols_dims:])
        rdims, rst = collapse(lead, x.strides[: x.ndim - ncols_dims], y.strides[: y.ndim - ncols_dims])
        if len(cdims) == 1 and len(rdims) <= 2:
            N = cdims[0] if all(n != 0 for n in tail) else 0
            if len(tail) == 0:
                N = 1
            _, rsy = pad_dims(rdims, rst[1], 2)
            rdims, rsx = pad_dims(rdims, rst[0], 2)
            return x, (rdims[0], rdims[1], N), (*rsx, cst[0][0]), (*rsy, cst[1][0])
        x = contiguous(x)
    raise UnsupportedError(f"{op}: the output's layout does not fold to rows x cols")


_AUTOTUNE = [True]


def set_autotune(enabled: bool) -> bool:
    """Turn autotuning of the ops' kernels on or off (off: each op uses its first cpu config).
    Returns the previous setting. The interp device never tunes."""
    old, _AUTOTUNE[0] = _AUTOTUNE[0], bool(enabled)
    return old


def launch(ctx: Context, fixed, tuned, configs, interp_config: dict, grid, args, flags: dict) -> None:
    """Launch an op's kernel: one small fixed config on interp; on other devices the autotuned
    kernel (or its first config when tuning is off)."""
    if ctx.is_reference:
        fixed[grid](*args, **flags, **interp_config)
    elif _AUTOTUNE[0]:
        tuned[grid](*args, **flags)
    else:
        fixed[grid](*args, **flags, **configs[0].kwargs)
