"""ONNX QuantizeLinear, DequantizeLinear (opsets 13-21): per-tensor, per-axis and blocked.

QuantizeLinear    y = saturate(round_half_even(x / y_scale) + y_zero_point)
DequantizeLinear  y = (x - x_zero_point) * x_scale
    Scale (and zero point, same shape) is a scalar or a 1-element tensor (per tensor), a 1-D tensor
    of x.shape[axis] values (per axis), or (opset 21, block_size > 0) x's shape with the axis dim
    ceil(x.shape[axis] / block_size) (blocked: element i along axis uses scale[i // block_size]).
    Quantized types: uint8 (the default), int8, uint16, int16; the result saturates to the type's
    range (always, for these integer types; `saturate` only concerns float8, which is
    UnsupportedError like int4). Quantize computes x / scale in fp32 (fp64 for int32 x, as numpy
    promotes it), rounded to x's dtype first when x and scale are the same 16-bit type, so the
    result matches the ONNX reference bit for bit. Dequantize computes in fp32 and rounds once to
    the scale's dtype (fp32, fp16, bf16). x: fp32, fp16, bf16, int32 (Quantize); uint8, int8,
    uint16, int16, int32 (Dequantize; the zero point has x's dtype).
Kernel
    x is seen as (O, D, I): D the axis dim, O/I the dims before/after it folded through their
    strides (a layout that does not fold is copied once). One program per (o, d) row and block of
    I; the scale and zero point are read through strides (o, d // block_size, i), 0 where they
    broadcast, so per-tensor, per-axis and blocked quantization are one kernel.
"""

from __future__ import annotations

import numpy as np

import kaiyuan.language as kl

from ..compiler import jit
from ..runtime.dtypes import dtype as to_dtype
from ..runtime.errors import ArgumentError, UnsupportedError
from ._common import Operand, collapse, contiguous
from .nn_util import kind, np_names, out_type, require, shape_of, strides_of, view
from .schema import OpDef, register

QTYPES = {"u8": (0, 255), "i8": (-128, 127), "u16": (0, 65535), "i16": (-32768, 32767)}
ONNX_QTYPE = {2: "u8", 3: "i8", 4: "u16", 5: "i16"}  # TensorProto data types
X_FLOATS = ("fp32", "fp16", "bf16", "i32")
SCALES = ("fp32", "fp16", "bf16")
BLOCK = 1024


@jit
def rint(v):
    """Round half to even (numpy.rint), on a float tile."""
    f = kl.floor(v)
    d = v - f
    odd = (f - 2.0 * kl.floor(f * 0.5)) != 0.0
    return kl.where((d > 0.5) | ((d == 0.5) & odd), f + 1.0, f)


@jit
def quant_kernel(x_ptr, s_ptr, z_ptr, y_ptr, D, I, BS, sxo, sxd, sxi, sso, ssd, ssi, szo, szd, szi, LO: kl.constexpr,
                 HI: kl.constexpr, HAS_Z: kl.constexpr, QUANT: kl.constexpr, FP64: kl.constexpr,
                 ROUND16: kl.constexpr, BLOCK: kl.constexpr):
    # row = o * D + d; y is contiguous (O, D, I); the scale/zero point of element (o, d, i) is at
    # o * sso + (d // BS) * ssd + i * ssi (strides 0 where they broadcast; zero point: sz*)
    row = kl.program_id(0)
    o = row // D
    d = row % D
    i = kl.program_id(1) * BLOCK + kl.arange(0, BLOCK)
    mask = i < I
    db = d // BS
    x = kl.load(x_ptr + o * sxo + d * sxd + i * sxi, mask=mask, other=0)
    s = kl.load(s_ptr + o * sso + db * ssd + i * ssi, mask=mask, other=1)
    if FP64:
        xc = x.to(kl.float64)
        sc = s.to(kl.float64)
    else:
        xc = x.to(kl.float32)
        sc = s.to(kl.float32)
    z = 0.0
    if HAS_Z:
        z = kl.load(z_ptr + o * szo + db * szd + i * szi, mask=mask, other=0).to(xc.dtype)
    if QUANT:
        v = xc / sc
        if ROUND16:  # x / scale in x's own 16-bit type, as ONNX (numpy) computes it
            v = v.to(x.dtype).to(xc.dtype)
        q = kl.minimum(kl.maximum(rint(v) + z, LO), HI)
        kl.store(y_ptr + row * I + i, q, mask=mask)
    else:
        kl.store(y_ptr + row * I + i, (xc - z) * sc, mask=mask)


def _scale_mode(op: str, x: tuple, s: tuple, axis: int, block: int) -> tuple[str, int]:
    """('tensor' | 'axis' | 'block', the axis in range); ArgumentError when the scale's shape fits
    none. The axis only matters (and is checked) per axis and blocked."""
    size = int(np.prod(s)) if s else 1
    if not block and (len(s) == 0 or size == 1):
        return "tensor", 0
    if not -len(x) <= axis < len(x):
        raise ArgumentError(f"{op}: axis {axis} is out of range for a {len(x)}-d input")
    axis %= len(x)
    if block:
        if block < 0:
            raise ArgumentError(f"{op}: block_size {block} must be positive")
        want = x[:axis] + (-(-x[axis] // block),) + x[axis + 1:]
        if tuple(s) != want:
            raise ArgumentError(f"{op}: blocked quantization (block_size {block}, axis {axis}) needs a scale of "
                                f"shape {want}, got {tuple(s)}")
        return "block", axis
    if len(s) == 1 and s[0] == x[axis]:
        return "axis", axis
    raise ArgumentError(f"{op}: scale of shape {tuple(s)} is neither per tensor (a scalar) nor per axis "
                        f"({x[axis] if x else 1} values along axis {axis})")


def _check_zero_point(op: str, types):
    s, z = types[1], types[2] if len(types) > 2 else None
    if z is not None and tuple(z.shape) != tuple(s.shape) and not (int(np.prod(z.shape)) == 1 == int(np.prod(s.shape))):
        raise ArgumentError(f"{op}: zero point {tuple(z.shape)} and scale {tuple(s.shape)} must have one shape")
    return z


def _quant_type(types, attrs) -> str:
    z = types[2] if len(types) > 2 else None
    want = attrs.get("output_dtype", 0) or 0
    if want and want not in ONNX_QTYPE:
        raise UnsupportedError(f"QuantizeLinear: output_dtype {want} is not supported",
                               hint="kaiyuan quantizes to uint8 (2), int8 (3), uint16 (4), int16 (5)")
    name = ONNX_QTYPE.get(want, "u8")
    if z is not None:
        zname = require("QuantizeLinear", z.dtype, tuple(QTYPES), "y_zero_point")
        if want and zname != name:
            raise ArgumentError(f"QuantizeLinear: output_dtype {name} and y_zero_point {zname} disagree")
        name = zname
    return name


def _quant_infer(types, attrs, consts):
    x, s = types[0], types[1]
    require("QuantizeLinear", x.dtype, X_FLOATS, "x")
    require("QuantizeLinear", s.dtype, SCALES, "y_scale")
    _scale_mode("QuantizeLinear", tuple(x.shape), tuple(s.shape), int(attrs["axis"]), int(attrs.get("block_size", 0)))
    _check_zero_point("QuantizeLinear", types)
    return [out_type(to_dtype(_quant_type(types, attrs)).np, x.shape)]


def _dequant_infer(types, attrs, consts):
    x, s = types[0], types[1]
    xname = require("DequantizeLinear", x.dtype, tuple(QTYPES) + ("i32",), "x")
    require("DequantizeLinear", s.dtype, SCALES, "x_scale")
    _scale_mode("DequantizeLinear", tuple(x.shape), tuple(s.shape), int(attrs["axis"]),
                int(attrs.get("block_size", 0)))
    z = _check_zero_point("DequantizeLinear", types)
    if z is not None and kind("DequantizeLinear", z.dtype) != xname:
        raise ArgumentError(f"DequantizeLinear: x_zero_point has dtype {z.dtype}, x {x.dtype}: they must agree")
    return [out_type(s.dtype, x.shape)]


def _three_d(x, axis: int):
    """(x as an (O, D, I) view or a contiguous copy, (O, D, I), strides)."""
    shape, st = shape_of(x), strides_of(x)
    if len(shape) == 0:
        shape, st, axis = (1,), (0,), 0
    O, D, I = int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1:]))
    for _ in range(2):
        (od, (os_,)), (idd, (is_,)) = collapse(shape[:axis], st[:axis]), collapse(shape[axis + 1:], st[axis + 1:])
        if len(od) == 1 and len(idd) == 1:
            return x, (O, D, I), (os_[0], st[axis], is_[0])
        c = contiguous(Operand(x, shape, st, to_dtype(x.dtype), "x"))
        x, st = c.obj, c.strides
    raise AssertionError("a contiguous copy always folds")


def _scale_strides(s, axis: int, mode: str):
    """(scale view, (sso, ssd, ssi)) for the (O, D, I) view of x."""
    if mode == "tensor":
        return view(s, (1,), (0,)), (0, 0, 0)
    if mode == "axis":
        return s, (0, strides_of(s)[0], 0)
    s2, _, st = _three_d(s, axis)
    return s2, st


def _run(op: str, inputs, attrs, outputs, quant: bool):
    x, s = inputs[0], inputs[1]
    z = inputs[2] if len(inputs) > 2 else None
    y = outputs[0]
    block = int(attrs.get("block_size", 0))
    mode, axis = _scale_mode(op, shape_of(x), shape_of(s), int(attrs["axis"]), block)
    x3, (O, D, I), sx = _three_d(x, axis)
    s3, ss = _scale_strides(s, axis, mode)
    z3, sz = _scale_strides(z, axis, mode) if z is not None else (s3, ss)
    if O * D * I == 0:
        return
    xname, sname = kind(op, x.dtype), kind(op, s.dtype)
    lo, hi = QTYPES.get(kind(op, y.dtype), (0, 0))
    b = min(BLOCK, I)
    quant_kernel[(O * D, -(-I // b))](x3, s3, z3, y, D, I, max(block, 1), *sx, *ss, *sz,
                                      LO=float(lo), HI=float(hi), HAS_Z=z is not None, QUANT=quant,
                                      FP64=quant and xname == "i32",
                                      ROUND16=quant and xname == sname and xname in ("fp16", "bf16"), BLOCK=b)


def _quant_run(inputs, attrs, consts, outputs):
    _run("QuantizeLinear", inputs, attrs, outputs, quant=True)


def _dequant_run(inputs, attrs, consts, outputs):
    _run("DequantizeLinear", inputs, attrs, outputs, quant=False)


QDOC = "saturate(rint(x / scale) + zero_point) to u8/i8/u16/i16; per tensor, per axis{}"
for since, until, attrs in ((13, 18, {"axis": 1}), (19, 20, {"axis": 1, "saturate": 1}),
                            (21, 10**9, {"axis": 1, "saturate": 1, "block_size": 0, "output_dtype": 0})):
    register(OpDef("QuantizeLinear", _quant_infer, _quant_run, since=since, until=until, inputs=(2, 3),
                   attrs=attrs, dtypes=np_names(X_FLOATS), doc=QDOC.format(", blocked" if since == 21 else "")))
for since, until, attrs in ((13, 20, {"axis": 1}), (21, 10**9, {"axis": 1, "block_size": 0})):
    register(OpDef("DequantizeLinear", _dequant_infer, _dequant_run, since=since, until=until, inputs=(2, 3),
                   attrs=attrs, dtypes=np_names(tuple(QTYPES) + ("i32",)),
                   doc="(x - zero_point) * scale, in the scale's dtype; per tensor, per axis"
                       + (", blocked" if since == 21 else "")))
