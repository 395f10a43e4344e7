"""ONNX Pad (opsets 11-21): modes constant, reflect, edge (and wrap from opset 19).

Definition
    pads (constant input) holds [begin_0, ..., begin_k, end_0, ..., end_k] for the padded axes
    (all axes, or the constant `axes` input from opset 18); a negative pad removes elements.
    constant_value (optional, a scalar of the input's dtype, any tensor — read by the kernel)
    fills constant padding, default 0.
Kernels
    constant: fill the output with the value (`fill_kernel`), then one strided copy of the kept
    part of the input into the interior. reflect/edge/wrap: per output dim an index map (output
    index -> input offset, from the shapes alone) and one `mapped_copy_kernel`.
"""

from __future__ import annotations

import numpy as np

from ..runtime.errors import ArgumentError, UnsupportedError
from ..runtime.tensor import contiguous_strides
from .mv_base import ALL_DTYPES, begin, check_dtype, ints, norm_axes, numel, same_type
from .mv_copy import View, bits, copy, fill, mapped_copy, operand
from .schema import OpDef, register


def _pads(x_shape, consts, has_axes: bool) -> list[tuple[int, int]]:
    rank = len(x_shape)
    pads = ints("Pad", consts, 1, "pads")
    axes = ints("Pad", consts, 3, "axes", required=False) if has_axes else None
    axes = list(range(rank)) if axes is None else norm_axes("Pad", axes, rank)
    if len(pads) != 2 * len(axes):
        raise ArgumentError(f"Pad: pads has {len(pads)} values for {len(axes)} axes (needs 2 per axis)")
    out = [(0, 0)] * rank
    for i, a in enumerate(axes):
        out[a] = (pads[i], pads[len(axes) + i])
    return out


def _infer(modes, has_axes):
    def infer(types, attrs, consts):
        x = types[0]
        check_dtype("Pad", x)
        mode = attrs["mode"]
        if mode not in modes:
            raise UnsupportedError(f"Pad: mode {mode!r} is not supported at this opset",
                                   hint=f"supported modes: {', '.join(modes)}")
        if len(types) > 2 and types[2] is not None and np.dtype(types[2].dtype) != np.dtype(x.dtype):
            raise ArgumentError(f"Pad: constant_value is {np.dtype(types[2].dtype).name}, "
                                f"data {np.dtype(x.dtype).name}")
        pads = _pads(x.shape, consts, has_axes)
        out = [d + b + e for d, (b, e) in zip(x.shape, pads)]
        if any(d < 0 for d in out):
            raise ArgumentError(f"Pad: pads {pads} remove more than the input's dims {x.shape}")
        for d, o, (b, e) in zip(x.shape, out, pads):
            if mode != "constant" and d == 0 and o > 0:
                raise ArgumentError(f"Pad: mode {mode!r} cannot pad an empty dim")
        return [same_type(x, out)]
    return infer


def _index_map(mode: str, n: int, begin_pad: int, out_n: int) -> np.ndarray:
    """Input index for each output index of one dim (from shapes alone)."""
    c = np.arange(out_n, dtype=np.int64) - begin_pad
    if mode == "edge":
        return np.clip(c, 0, n - 1)
    if mode == "wrap":
        return np.mod(c, n)
    if n == 1:  # reflect
        return np.zeros_like(c)
    period = 2 * (n - 1)
    m = np.mod(c, period)
    return np.where(m >= n, period - m, m)


def _run(has_axes):
    def run(inputs, attrs, consts, outputs):
        ctx = begin("Pad", inputs, outputs)
        x, y = operand(ctx, inputs[0], "data"), operand(ctx, outputs[0], "output")
        pads = _pads(x.shape, consts, has_axes)
        mode = attrs["mode"]
        if mode == "constant":
            value = inputs[2] if len(inputs) > 2 and inputs[2] is not None and numel(inputs[2]) else None
            fill(ctx, y.obj, None if value is None else bits(value))
            # the kept part of x: from max(0, -b) to n - max(0, -e); placed at max(0, b)
            shape = [n - max(0, -b) - max(0, -e) for n, (b, e) in zip(x.shape, pads)]
            if all(n > 0 for n in shape):
                ys = contiguous_strides(y.shape)
                xo = sum(max(0, -b) * s for (b, _), s in zip(pads, x.strides))
                yo = sum(max(0, b) * s for (b, _), s in zip(pads, ys))
                copy(ctx, shape, View(x.obj, xo, x.strides), View(y.obj, yo, ys), "Pad")
            return
        maps = [_index_map(mode, n, b, o) * s for n, (b, _), o, s in zip(x.shape, pads, y.shape, x.strides)]
        mapped_copy(ctx, x.obj, maps, y.obj, "Pad")
    return run


_COMMON = dict(dtypes=ALL_DTYPES, attrs={"mode": "constant"})
register(OpDef("Pad", _infer(("constant", "reflect", "edge"), False), _run(False), since=11, until=17,
               inputs=(2, 3), value_inputs=(1,), doc="pads (constant), constant_value", **_COMMON))
register(OpDef("Pad", _infer(("constant", "reflect", "edge"), True), _run(True), since=18, until=18,
               inputs=(2, 4), value_inputs=(1, 3), doc="pads and axes (constants), constant_value", **_COMMON))
register(OpDef("Pad", _infer(("constant", "reflect", "edge", "wrap"), True), _run(True), since=19,
               inputs=(2, 4), value_inputs=(1, 3), doc="pads and axes (constants), constant_value; wrap mode",
               **_COMMON))
