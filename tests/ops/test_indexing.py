"""ONNX indexing operators (kaiyuan.ops.indexing, kaiyuan.ops.mv_scatter) against onnx's reference
evaluator (`onnx_node.check`).

Tolerances: gathers and plain scatters move bits, so they compare equal for every dtype; scatter
reductions combine in the data's dtype (fp16/bf16 via fp32, one rounding per update, as numpy
does) and compare with check's default rtol 1e-5 / atol 1e-6 (fp16/bf16 results are rounded the
same way, so they match to the bit). Out-of-range indices are DeviceAssertError on both devices.
Cases taking the `device` fixture also run on interp with tiny shapes.
"""

import numpy as np
import pytest

import kaiyuan as ky

from .onnx_node import check
from .test_movement import DTYPES, data, run_def, strided


def idx(rng, shape, dim, dtype=np.int64):
    """Random indices in [-dim, dim) (negative ones count from the end)."""
    return rng.integers(-dim, dim, size=shape).astype(dtype)


# ---------------------------------------------------------------- Gather
@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_every_dtype(device, rng, dtype):
    x = data(rng, (4, 3, 5), dtype)
    check("Gather", [strided(x), idx(rng, (2, 3), 3)], {"axis": 1}, device=device.name)
    check("GatherElements", [x, idx(rng, (4, 2, 5), 3, np.int32)], {"axis": -2}, device=device.name)


@pytest.mark.parametrize("shape,ishape,axis", [
    ((7,), (), 0), ((5, 4), (3,), 0), ((2, 3, 4), (2, 2), -1), ((6, 1), (0,), 0), ((3, 257), (4, 5), 1),
    ((2, 3, 2, 3, 2, 3, 2), (2, 2), 3),
])
def test_gather_shapes(rng, shape, ishape, axis):
    x = data(rng, shape)
    i = idx(rng, ishape, shape[axis])
    check("Gather", [x, i], {"axis": axis})
    check("Gather", [x.transpose(), strided(i) if i.ndim else i], {"axis": -1 - axis % len(shape)})


def test_gather_elements_shapes(rng):
    x = data(rng, (3, 4, 5), "float16")
    check("GatherElements", [x, idx(rng, (3, 7, 5), 4)], {"axis": 1})
    check("GatherElements", [x.transpose(2, 0, 1), strided(idx(rng, (2, 3, 4), 5))], {"axis": 0})
    check("GatherElements", [x, idx(rng, (3, 0, 5), 4)], {"axis": 1})


@pytest.mark.parametrize("op,shapes,attrs", [
    ("Gather", ((3, 4), (2,)), {"axis": 0}),
    ("GatherElements", ((3, 4), (3, 2)), {"axis": 1}),
    ("GatherND", ((3, 4), (2, 2)), {}),
])
def test_gather_out_of_range(device, op, shapes, attrs):
    x = np.zeros(shapes[0], np.float32)
    i = np.zeros(shapes[1], np.int64)
    i.reshape(-1)[-1] = 4 if op == "GatherElements" else 3
    if op == "GatherND":
        i.reshape(-1)[-1] = 4
    with pytest.raises(ky.DeviceAssertError, match=op):
        run_def(op, [x, i], attrs, device=device.name)


def test_gather_errors(rng):
    with pytest.raises(ky.UnsupportedError):
        check("Gather", [data(rng, (3,)), np.zeros(2, np.int16)])
    with pytest.raises(ky.ArgumentError):
        check("Gather", [data(rng, (3,)), np.zeros(2, np.int64)], {"axis": 1})
    with pytest.raises(ky.ArgumentError):
        check("GatherElements", [data(rng, (3, 2)), np.zeros((3, 3), np.int64)], {"axis": 0})


# ---------------------------------------------------------------- GatherND
@pytest.mark.parametrize("shape,ishape,batch_dims", [
    ((4, 5), (3, 2), 0), ((4, 5, 3), (2, 1), 0), ((2, 3, 4), (2, 1), 1), ((2, 3, 4, 5), (2, 3, 2, 1), 2),
    ((2, 3), (0, 2), 0), ((3, 4, 2), (3, 5, 2), 1),
])
def test_gather_nd(rng, shape, ishape, batch_dims):
    x = data(rng, shape)
    k = ishape[-1]
    i = np.stack([idx(rng, ishape[:-1], shape[batch_dims + j]) for j in range(k)], axis=-1)
    check("GatherND", [x, i], {"batch_dims": batch_dims})
    check("GatherND", [strided(x), i.astype(np.int32)], {"batch_dims": batch_dims})


def test_gather_nd_dtypes(device, rng):
    for dtype in ("bool", "bfloat16", "int64"):
        check("GatherND", [data(rng, (3, 2, 2), dtype), np.array([[2, -1], [0, 0]], np.int64)], device=device.name)


def test_gather_nd_errors(rng):
    with pytest.raises(ky.ArgumentError):
        check("GatherND", [data(rng, (3, 2)), np.zeros((2, 3), np.int64)])
    with pytest.raises(ky.ArgumentError):
        check("GatherND", [data(rng, (3, 2)), np.zeros((2, 1), np.int64)], {"batch_dims": 2})


# ---------------------------------------------------------------- OneHot
@pytest.mark.parametrize("axis", [-1, 0, 1, -3])
def test_one_hot(device, rng, axis):
    i = rng.integers(-6, 6, size=(2, 3)).astype(np.int64)  # includes out-of-range: all off
    check("OneHot", [i, np.array(4, np.int64), np.array([0.5, 2], np.float32)], {"axis": axis}, device=device.name)


def test_one_hot_index_and_value_dtypes(rng):
    check("OneHot", [np.array([0.0, 2.0, -1.0, 1.5], np.float32), np.array(3.0, np.float32),
                     np.array([0, 7], np.int8)])
    got = run_def("OneHot", [np.array([[1, 0]], np.int32), np.array([2], np.int64), np.array([False, True])],
                  {"axis": 0})[0]  # the reference cannot subtract bools
    np.testing.assert_array_equal(got, [[[False, True]], [[True, False]]])


def test_one_hot_errors():
    with pytest.raises(ky.ArgumentError):
        check("OneHot", [np.array([1]), np.array(0), np.array([0.0, 1.0], np.float32)])
    with pytest.raises(ky.ArgumentError):
        check("OneHot", [np.array([1]), np.array(2), np.array([0.0, 1.0, 2.0], np.float32)])
    with pytest.raises(ky.UnsupportedError, match="constant"):
        run_def("OneHot", [np.array([1]), None, np.array([0.0, 1.0], np.float32)])


# ---------------------------------------------------------------- ScatterND
@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd_reductions(device, rng, reduction):
    x = data(rng, (4, 3, 2))
    i = np.array([[1, 2], [0, -1], [1, 2], [3, 0]], np.int64)  # a duplicate: applied in order
    check("ScatterND", [strided(x), i, data(rng, (4, 2))], {"reduction": reduction}, device=device.name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_nd_every_dtype(rng, dtype):
    x = data(rng, (5, 4), dtype)
    check("ScatterND", [x, np.array([[3], [-5]], np.int32), data(rng, (2, 4), dtype)], opset=13)
    if dtype != "bool":
        check("ScatterND", [x, np.array([[0, 1], [0, 1]], np.int64), data(rng, (2,), dtype)], {"reduction": "add"})


def test_scatter_nd_shapes(rng):
    x = data(rng, (3, 4, 5))
    check("ScatterND", [x, np.zeros((0, 2), np.int64), data(rng, (0, 5))])
    check("ScatterND", [x, np.array([[[2, 3, 4]], [[0, 0, 0]]], np.int64), data(rng, (2, 1))])
    check("ScatterND", [x, np.array([[1], [1], [1]], np.int64), data(rng, (3, 4, 5))], {"reduction": "mul"})


def test_scatter_nd_errors(device, rng):
    x = data(rng, (3, 4))
    with pytest.raises(ky.UnsupportedError):
        run_def("ScatterND", [x, np.array([[0]], np.int64), data(rng, (1, 4))], {"reduction": "max"}, opset=16)
    with pytest.raises(ky.UnsupportedError):
        run_def("ScatterND", [data(rng, (3,), "bool"), np.array([[0]]), data(rng, (1,), "bool")], {"reduction": "add"})
    with pytest.raises(ky.ArgumentError):
        run_def("ScatterND", [x, np.array([[0]], np.int64), data(rng, (1, 3))])
    with pytest.raises(ky.DeviceAssertError, match="ScatterND"):
        run_def("ScatterND", [x, np.array([[3]], np.int64), data(rng, (1, 4))], device=device.name)


# ---------------------------------------------------------------- ScatterElements
@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements_reductions(device, rng, reduction):
    x = data(rng, (3, 4))
    i = idx(rng, (3, 5), 4)  # 5 updates per row into 4 places: duplicates, applied in order
    check("ScatterElements", [x, i, data(rng, (3, 5))], {"axis": 1, "reduction": reduction}, device=device.name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_elements_every_dtype(rng, dtype):
    x = data(rng, (4, 3, 2), dtype)
    i = idx(rng, (2, 3, 2), 4, np.int32)
    check("ScatterElements", [strided(x), strided(i), data(rng, (2, 3, 2), dtype)], {"axis": 0}, opset=13)


def test_scatter_elements_shapes(rng):
    x = data(rng, (2, 3, 2, 3, 2, 3, 2), "float64")  # lines of 6 dims that do not merge: host loop
    i = idx(rng, (2, 2, 2, 3, 1, 3, 2), 3)
    check("ScatterElements", [x, i, data(rng, i.shape, "float64")], {"axis": 1, "reduction": "add"})
    check("ScatterElements", [x[..., 0], i[:, :0, ..., 0], data(rng, (2, 0, 2, 3, 1, 3), "float64")], {"axis": -5})


def test_scatter_elements_errors(device, rng):
    x = data(rng, (3, 4))
    with pytest.raises(ky.ArgumentError):
        run_def("ScatterElements", [x, np.zeros((3, 2), np.int64), data(rng, (3, 3))])
    with pytest.raises(ky.UnsupportedError):
        run_def("ScatterElements", [x, np.zeros((3, 2), np.int64), data(rng, (3, 2))], {"reduction": "add"}, opset=13)
    with pytest.raises(ky.DeviceAssertError, match="ScatterElements"):
        run_def("ScatterElements", [x, np.full((1, 1), -4, np.int64), data(rng, (1, 1))], {"axis": 0},
                device=device.name)


def test_nonzero_is_unsupported(rng):
    with pytest.raises(ky.UnsupportedError, match="NonZero"):
        run_def("NonZero", [data(rng, (3,))], opset=13)


def test_tensor_inputs(device, rng):
    from .test_movement import check_tensors

    x = data(rng, (3, 4, 5))
    i = np.array([[1, -1]], np.int64)
    check_tensors("Gather", [x, i], {"axis": 1}, device=device.name)
    check_tensors("GatherND", [x, i], device=device.name)
    check_tensors("ScatterND", [x, i, x[0, :1]], {"reduction": "add"}, device=device.name)
    check_tensors("ScatterElements", [x, np.array([1, 2, 0, 1]).reshape(1, 4, 1), x[:1, :, :1]], {"axis": 1},
                  device=device.name)
    check_tensors("OneHot", [np.array([1, 2]), np.array(3), np.array([0.0, 1.0], np.float32)], device=device.name)
