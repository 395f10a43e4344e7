"""ONNX data-movement operators (kaiyuan.ops.movement and its mv_* modules) against onnx's reference
evaluator (`onnx_node.check`).

Tolerances: movement is exact (bits are copied), so every dtype compares equal; Resize linear
computes in fp32 (fp64 for fp64) and rounds once per resized axis, compared with rtol/atol 1e-5
(fp32), 1e-2 (fp16), 2e-2 (bf16), 1e-12 (fp64); Range in fp64 rounded once (exact).
Cases run on cpu; those taking the `device` fixture also run on interp with tiny shapes.
"""

import ml_dtypes
import numpy as np
import pytest

import kaiyuan as ky
from kaiyuan.ops.schema import TensorType, lookup

from .onnx_node import check, run_reference

DTYPES = ["bool", "int8", "float16", "bfloat16", "int32", "float32", "int64", "float64"]


def data(rng, shape, dtype="float32"):
    dt = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    if dt.kind in "iu":
        return rng.integers(-100 if dt.kind == "i" else 0, 100, size=shape).astype(dt)
    return rng.standard_normal(shape).astype(dt)


def strided(x):
    """The same values as x in a non-contiguous view (every other element of a bigger array)."""
    big = np.zeros(x.shape[:-1] + (2 * x.shape[-1] + 1,), x.dtype) if x.ndim else np.zeros((3,), x.dtype)
    if not x.ndim:
        return x
    big[..., 1::2] = x
    view = big[..., 1::2]
    assert not view.flags.c_contiguous or x.shape[-1] <= 1
    return view


def I(*v):  # noqa: E743
    return np.array(v, dtype=np.int64)


def run_def(op_type, inputs, attrs=None, opset=18, device="cpu"):
    """Run an OpDef's `run` even for views (onnx_node.run_kaiyuan reshapes views itself)."""
    op = lookup(op_type, opset)
    attrs = op.resolve_attrs(attrs or {}, op_type)
    consts = [x if i in op.value_inputs else None for i, x in enumerate(inputs)]
    types = [None if x is None else TensorType(np.dtype(x.dtype), tuple(x.shape)) for x in inputs]
    outs = [np.empty(t.shape, t.dtype) for t in op.infer(types, attrs, consts)]
    with ky.device(device):
        op.run(inputs, attrs, consts, outs)
    return outs


def check_run(op_type, inputs, attrs=None, opset=18, device="cpu"):
    """run_def's outputs equal the reference's."""
    got = run_def(op_type, inputs, attrs, opset, device)
    want = run_reference(op_type, inputs, attrs, opset, n_outputs=len(got))
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


# ---------------------------------------------------------------- every dtype width, on both devices
@pytest.mark.parametrize("dtype", DTYPES)
def test_transpose_slice_concat_every_dtype(device, rng, dtype):
    x = data(rng, (3, 1, 5, 2), dtype)
    check("Transpose", [strided(x)], {"perm": [2, 0, 3, 1]}, device=device.name)
    check("Slice", [x, I(-1, 4), I(-10, 0), I(0, 2), I(-2, -3)], device=device.name)
    check("Concat", [x, strided(x[:, :, :2])], {"axis": -2}, device=device.name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pad_tile_expand_every_dtype(device, rng, dtype):
    x = data(rng, (2, 3, 4), dtype)
    value = data(rng, (), dtype)
    check("Pad", [strided(x), I(1, 0, 2, 0, 3, 1), np.asarray(value)], device=device.name)
    check("Pad", [x, I(1, 0, 2, 0, 3, 1)], {"mode": "reflect"}, device=device.name)
    check("Tile", [x, I(2, 1, 3)], device=device.name)
    check("Expand", [x[:, :1], I(2, 2, 1, 1)], device=device.name)


# ---------------------------------------------------------------- Transpose
@pytest.mark.parametrize("shape,perm", [
    ((), None), ((7,), [0]), ((0, 3), [1, 0]), ((300, 257), [1, 0]), ((2, 1, 3), [-1, 0, 1]),
    ((2, 3, 2, 3, 2, 3, 2, 3), [7, 5, 3, 1, 0, 2, 4, 6]),  # 8 dims that do not merge: looped on the host
])
def test_transpose_shapes(rng, shape, perm):
    check("Transpose", [data(rng, shape)], None if perm is None else {"perm": perm})


def test_transpose_errors(rng):
    with pytest.raises(ky.ArgumentError):
        check("Transpose", [data(rng, (2, 3))], {"perm": [0, 0]})


# ---------------------------------------------------------------- Slice
@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([1], [6], None, None),
    ([-1], [-2**63], [1], [-1]),               # whole dim reversed
    ([2**62, 0], [-2**62, 5], [0, 2], [-2, 3]),  # clamped ends, negative step
    ([3], [3], [-1], [1]),                     # empty
    ([0, 0, 0], [1, 1, 1], [0, 1, 2], [1, 1, 1]),
    ([10], [0], [0], [-4]),
])
def test_slice(rng, starts, ends, axes, steps):
    x = data(rng, (7, 5, 11))
    ins = [x, I(*starts), I(*ends)]
    if axes is not None:
        ins.append(I(*axes))
    if steps is not None:
        ins.append(I(*steps))
    check("Slice", ins)
    ins[0] = strided(x)
    check("Slice", ins)


def test_slice_errors(rng):
    x = data(rng, (4, 4))
    with pytest.raises(ky.ArgumentError):
        check("Slice", [x, I(0), I(2), I(0), I(0)])
    with pytest.raises(ky.ArgumentError):
        check("Slice", [x, I(0, 1), I(2), I(0)])


# ---------------------------------------------------------------- Concat, Split
def test_concat(rng):
    x = data(rng, (2, 3, 5))
    check("Concat", [x, x[:, :0], strided(x[:, :1]), x.transpose(0, 1, 2)], {"axis": 1})
    check("Concat", [x], {"axis": 0})
    check("Concat", [data(rng, (0, 3)), data(rng, (0, 2))], {"axis": -1})


def test_concat_errors(rng):
    with pytest.raises(ky.UnsupportedError):
        check("Concat", [data(rng, (2,)), data(rng, (2,), "float64")], {"axis": 0})
    with pytest.raises(ky.ArgumentError):
        check("Concat", [data(rng, (2, 3)), data(rng, (3, 3))], {"axis": 1})


def test_split(device, rng):
    x = data(rng, (3, 7, 2))
    check("Split", [strided(x)], {"axis": 1, "split": [2, 0, 5]}, opset=11, device=device.name)
    check("Split", [x, I(3, 4)], {"axis": -2}, opset=13, device=device.name)
    check("Split", [x], {"axis": 1, "num_outputs": 3}, opset=18, device=device.name)  # 3, 3, 1


def test_split_equal_needs_output_count(rng):
    x = data(rng, (4, 6))
    got = run_def("Split", [x], {"axis": 1, "_num_outputs": 3}, opset=13)
    for g, w in zip(got, np.split(x, 3, axis=1)):
        np.testing.assert_array_equal(g, w)
    with pytest.raises(ky.UnsupportedError, match="_num_outputs"):
        run_def("Split", [x], {"axis": 1}, opset=13)
    with pytest.raises(ky.ArgumentError):
        run_def("Split", [x], {"axis": 1, "_num_outputs": 4}, opset=13)
    with pytest.raises(ky.ArgumentError):
        run_def("Split", [x, I(1, 2)], {"axis": 1}, opset=13)


# ---------------------------------------------------------------- Expand, Tile
@pytest.mark.parametrize("shape,target", [
    ((3, 1), (2, 1, 6)), ((1,), (5,)), ((4, 1, 2), (1, 3, 1)), ((1, 2), (0, 2)), ((), (2, 3)),
])
def test_expand(rng, shape, target):
    check("Expand", [data(rng, shape), I(*target)])


def test_tile(rng):
    check("Tile", [data(rng, (2, 3)), I(3, 0)])
    check("Tile", [strided(data(rng, (2, 3, 1, 2, 3))), I(2, 1, 3, 2, 2)])  # 10 view dims: host loop


def test_expand_tile_errors(rng):
    with pytest.raises(ky.ArgumentError):
        check("Expand", [data(rng, (3, 2)), I(3, 3)])
    with pytest.raises(ky.ArgumentError):
        check("Expand", [data(rng, (3, 1)), I(3, -1)])
    with pytest.raises(ky.ArgumentError):
        check("Tile", [data(rng, (3, 2)), I(3)])


# ---------------------------------------------------------------- DepthToSpace, SpaceToDepth
@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space(device, rng, mode):
    x = data(rng, (2, 12, 3, 1), "float16")
    check("DepthToSpace", [strided(x)], {"blocksize": 2, "mode": mode}, device=device.name)


def test_space_to_depth(device, rng):
    check("SpaceToDepth", [data(rng, (1, 3, 6, 9), "int8")], {"blocksize": 3}, device=device.name)
    with pytest.raises(ky.ArgumentError):
        check("SpaceToDepth", [data(rng, (1, 3, 6, 8))], {"blocksize": 3})


# ---------------------------------------------------------------- Pad
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_modes(rng, mode):
    x = data(rng, (3, 4, 5))
    check("Pad", [strided(x), I(0, 2, 4, 1, 3, 0)], {"mode": mode}, opset=19)
    check("Pad", [x, I(1, 7, 2, 9), None, I(-1, 1)], {"mode": mode}, opset=19)  # pads past the dim


def test_pad_constant_default_and_scalar(device, rng):
    check("Pad", [data(rng, (2, 3), "int64"), I(1, 1, 0, 2)], device=device.name)
    check("Pad", [data(rng, (2, 3), "bool"), I(0, 1, 1, 0), np.array(True)], device=device.name)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_pad_negative_removes(rng, mode):
    """np.pad (the reference) refuses negative pads; ONNX crops: compare with slicing."""
    x = data(rng, (6, 7))
    got = run_def("Pad", [x, I(-2, 1, 1, -3)], {"mode": mode})[0]
    want = np.pad(x[2:, :], ((0, 1), (1, 0)), mode=mode)[:, :-3] if mode != "constant" else \
        np.pad(x[2:, :4], ((0, 1), (1, 0)))
    np.testing.assert_array_equal(got, want)


def test_pad_errors(rng):
    x = data(rng, (2, 3))
    with pytest.raises(ky.UnsupportedError):
        check("Pad", [x, I(0, 1, 0, 1)], {"mode": "wrap"}, opset=18)
    with pytest.raises(ky.ArgumentError):
        check("Pad", [x, I(0, 1, 0)])
    with pytest.raises(ky.ArgumentError):
        check("Pad", [x, I(0, -2, 0, -2)])
    with pytest.raises(ky.UnsupportedError, match="constant"):
        run_def("Pad", [x, None])


# ---------------------------------------------------------------- Trilu
@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [None, 2, -1, 100, -100])
def test_trilu(rng, upper, k):
    x = data(rng, (2, 3, 5, 4))
    ins = [x] if k is None else [x, I(k)]
    check("Trilu", ins, {"upper": upper})
    ins[0] = x.transpose(1, 0, 2, 3)  # batch dims that do not merge: copied first
    check("Trilu", ins, {"upper": upper})


def test_trilu_dtypes(device, rng):
    check("Trilu", [data(rng, (4, 3), "bool"), I(1)], device=device.name)
    check("Trilu", [data(rng, (1, 0, 3), "bfloat16")], {"upper": 0}, device=device.name)


# ---------------------------------------------------------------- Reshape, Flatten, Squeeze, Unsqueeze
VIEW_CASES = [
    ("Reshape", lambda x: [x, I(0, -1, 2)], {}, 14),
    ("Reshape", lambda x: [x, I(4, 0, -1)], {"allowzero": 0}, 14),
    ("Reshape", lambda x: [x, I(-1)], {}, 13),
    ("Flatten", lambda x: [x], {"axis": -1}, 13),
    ("Flatten", lambda x: [x], {"axis": 0}, 13),
    ("Squeeze", lambda x: [x[:, :1]], {}, 13),
    ("Squeeze", lambda x: [x[:, :1], I(-2)], {}, 13),
    ("Squeeze", lambda x: [x[:, :1]], {"axes": [1]}, 11),
    ("Unsqueeze", lambda x: [x, I(-1, 0)], {}, 13),
    ("Unsqueeze", lambda x: [x], {"axes": [1, 4]}, 11),
]


@pytest.mark.parametrize("op,make,attrs,opset", VIEW_CASES)
def test_views(device, rng, op, make, attrs, opset):
    x = data(rng, (3, 2, 4), "float16")
    assert lookup(op, opset).view
    check(op, make(x), attrs, opset, device=device.name)            # the view's shape
    check_run(op, make(x.transpose(2, 0, 1).transpose(1, 2, 0)), attrs, opset, device=device.name)


def test_reshape_allowzero(rng):
    check("Reshape", [data(rng, (0, 3)), I(3, 0)], {"allowzero": 1}, opset=14)


def test_view_errors(rng):
    x = data(rng, (3, 4))
    with pytest.raises(ky.ArgumentError):
        check("Reshape", [x, I(5, -1)])
    with pytest.raises(ky.ArgumentError):
        check("Reshape", [x, I(-1, -1)])
    with pytest.raises(ky.ArgumentError):
        check("Squeeze", [x, I(0)], opset=13)
    with pytest.raises(ky.ArgumentError):
        check("Unsqueeze", [x, I(0, 0)], opset=13)
    with pytest.raises(ky.UnsupportedError, match="constant"):
        run_def("Reshape", [x, None])
    with pytest.raises(ky.UnsupportedError, match="does not support"):
        check("Reshape", [np.array(["a", "b"]), I(2)])


# ---------------------------------------------------------------- Shape, Size, Constant, ConstantOfShape, Range
def test_shape_size(device, rng):
    x = data(rng, (2, 0, 5, 3))
    check("Shape", [x], opset=13, device=device.name)
    for start, end in [(1, None), (-2, None), (0, -1), (3, 1), (-10, 10)]:
        attrs = {"start": start} if end is None else {"start": start, "end": end}
        check("Shape", [x], attrs, opset=15, device=device.name)
    check("Size", [x], device=device.name)
    check("Size", [np.float32(3)], device=device.name)


def test_constant(device):
    from onnx import numpy_helper

    value = np.arange(6, dtype=np.int8).reshape(2, 3)
    check("Constant", [], {"value": numpy_helper.from_array(value)}, device=device.name)
    check("Constant", [], {"value_floats": [1.5, -2.0]}, device=device.name)
    check("Constant", [], {"value_int": 7}, device=device.name)
    with pytest.raises(ky.UnsupportedError):
        run_def("Constant", [], {"value_string": "x"})


def test_constant_of_shape(device):
    from onnx import numpy_helper

    check("ConstantOfShape", [I(2, 3)], device=device.name)
    check("ConstantOfShape", [I(4, 1, 3)], {"value": numpy_helper.from_array(np.array([-7], np.int64))},
          device=device.name)
    check("ConstantOfShape", [I()], {"value": numpy_helper.from_array(np.array([2.5], ml_dtypes.bfloat16))},
          device=device.name)
    check("ConstantOfShape", [I(0, 5)], device=device.name)


@pytest.mark.parametrize("dtype,start,limit,delta", [
    ("float32", 1.0, 7.3, 0.7), ("float64", -1.0, 1.0, 0.1), ("int32", 10, -3, -3), ("int64", 0, 5, 1),
    ("int16", 3, 3, 1), ("float32", 5.0, 1.0, 1.0),
])
def test_range(device, dtype, start, limit, delta):
    dt = np.dtype(dtype)
    check("Range", [np.array(start, dt), np.array(limit, dt), np.array(delta, dt)], device=device.name)


def test_range_errors():
    z = np.array(0, np.int64)
    with pytest.raises(ky.ArgumentError):
        check("Range", [z, np.array(3, np.int64), z])
    with pytest.raises(ky.UnsupportedError):
        check("Range", [np.array(0, np.int8)] * 3)


# ---------------------------------------------------------------- Resize
NO_ROI = np.array([], np.float32)
TRANSFORMS = ["half_pixel", "pytorch_half_pixel", "asymmetric", "align_corners"]


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
def test_resize_nearest(rng, transform, nearest_mode):
    x = data(rng, (2, 3, 5, 7))
    attrs = {"coordinate_transformation_mode": transform, "nearest_mode": nearest_mode}
    check("Resize", [strided(x), NO_ROI, np.array([1, 1, 2.5, 0.6], np.float32)], attrs)
    check("Resize", [x, NO_ROI, np.array([], np.float32), I(1, 4, 11, 1)], attrs)


@pytest.mark.parametrize("transform,scales", [(t, [1, 1, 1.7, 0.5]) for t in TRANSFORMS]
                         + [("half_pixel_symmetric", [1, 1, 1.7, 0.6])])
def test_resize_linear(rng, transform, scales):
    # (half_pixel_symmetric with scale 0.5 on 7 maps output 0 to 1 - 2e-16, where the reference
    # evaluator picks the neighbours of 0 but the weight of 1: a rounding artefact, not the spec)
    x = data(rng, (2, 3, 5, 7))
    attrs = {"mode": "linear", "coordinate_transformation_mode": transform}
    check("Resize", [strided(x), NO_ROI, np.array(scales, np.float32)], attrs, opset=19)
    check("Resize", [x, NO_ROI, np.array([], np.float32), I(2, 3, 1, 16)], attrs, opset=19)


@pytest.mark.parametrize("dtype,tol", [("float16", 1e-2), ("bfloat16", 2e-2), ("float64", 1e-12)])
def test_resize_linear_dtypes(device, rng, dtype, tol):
    x = data(rng, (1, 2, 3, 4), dtype)
    check("Resize", [x, NO_ROI, np.array([1, 1, 2, 1.5], np.float32)], {"mode": "linear"},
          rtol=tol, atol=tol, device=device.name)


def test_resize_nearest_dtypes_and_ranks(device, rng):
    check("Resize", [data(rng, (2, 3, 4), "int8"), NO_ROI, np.array([1, 1.5, 0.5], np.float32)],
          device=device.name)
    x, scales = data(rng, (1, 2, 2, 3, 2), "bool"), np.array([1, 1, 2, 1, 3], np.float32)
    got = run_def("Resize", [x, NO_ROI, scales], device=device.name)[0]  # the reference cannot cast to bool
    want = run_reference("Resize", [x.astype(np.uint8), NO_ROI, scales])[0]
    np.testing.assert_array_equal(got, want.astype(bool))


def test_resize_axes_and_aspect(rng):
    x = data(rng, (2, 3, 6, 8))
    ins = [x, NO_ROI, np.array([2, 0.5], np.float32)]
    want = check("Resize", ins, {"axes": [3, 1], "mode": "linear"}, opset=18)[0]
    np.testing.assert_array_equal(run_def("Resize", ins, {"axes": [-1, 1], "mode": "linear"})[0], want)
    for policy in ["not_larger", "not_smaller"]:
        check("Resize", [x, NO_ROI, np.array([], np.float32), I(9, 9)],
              {"axes": [2, 3], "keep_aspect_ratio_policy": policy}, opset=18)
    check("Resize", [x, NO_ROI, np.array([1, 1, 1, 1], np.float32)], {"mode": "linear"})  # identity


@pytest.mark.parametrize("attrs,opset", [
    ({"mode": "cubic"}, 18), ({"coordinate_transformation_mode": "tf_crop_and_resize"}, 18),
    ({"mode": "linear", "antialias": 1}, 18), ({"coordinate_transformation_mode": "half_pixel_symmetric"}, 18),
])
def test_resize_unsupported(rng, attrs, opset):
    with pytest.raises(ky.UnsupportedError):
        run_def("Resize", [data(rng, (1, 1, 2, 2)), NO_ROI, np.array([1, 1, 2, 2], np.float32)], attrs, opset)


def test_resize_errors(rng):
    x = data(rng, (1, 1, 2, 2))
    with pytest.raises(ky.ArgumentError):
        run_def("Resize", [x, NO_ROI, np.array([1, 1, 2, 2], np.float32), I(1, 1, 4, 4)])
    with pytest.raises(ky.ArgumentError):
        run_def("Resize", [x, NO_ROI, np.array([2, 2], np.float32)])
    with pytest.raises(ky.UnsupportedError):
        run_def("Resize", [data(rng, (1, 1, 2, 2), "int32"), NO_ROI, np.array([1, 1, 2, 2], np.float32)],
                {"mode": "linear"})


# ---------------------------------------------------------------- ky.Tensor inputs and outputs
def check_tensors(op_type, inputs, attrs=None, opset=18, device="cpu"):
    """`run` on ky.Tensors (how non-host devices call it) equals the reference."""
    op = lookup(op_type, opset)
    full = op.resolve_attrs(attrs or {}, op_type)
    consts = [x if i in op.value_inputs else None for i, x in enumerate(inputs)]
    types = [None if x is None else TensorType(np.dtype(x.dtype), tuple(x.shape)) for x in inputs]
    with ky.device(device):
        outs = [ky.empty(t.shape, t.dtype) for t in op.infer(types, full, consts)]
        op.run([None if x is None else ky.tensor(x) for x in inputs], full, consts, outs)
    want = run_reference(op_type, inputs, attrs, opset, n_outputs=len(outs))
    for g, w in zip(outs, want):
        np.testing.assert_allclose(g.numpy().astype(np.float64), w.astype(np.float64), rtol=1e-5, atol=1e-6)


def test_tensor_inputs(device, rng):
    x = data(rng, (3, 4, 5))
    check_tensors("Slice", [x, I(-1), I(-10), I(1), I(-2)], device=device.name)
    check_tensors("Pad", [x, I(1, 2, 0, 2, 1, 3)], {"mode": "reflect"}, device=device.name)
    check_tensors("Pad", [x, I(1, 0, 0, 0, 1, 3), np.array(2.0, np.float32)], device=device.name)
    check_tensors("Shape", [x], device=device.name)
    check_tensors("ConstantOfShape", [I(2, 2)], device=device.name)
    check_tensors("Range", [np.array(1.0), np.array(3.0), np.array(0.5)], device=device.name)
    check_tensors("Resize", [x[None], NO_ROI, np.array([1, 1, 2, 1.5], np.float32)], {"mode": "linear"},
                  device=device.name)
    check_tensors("Trilu", [x], device=device.name)
