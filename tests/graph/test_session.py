"""kaiyuan.InferenceSession end to end on cpu: onnxruntime's API, dynamic shapes, errors, and real
models exported from PyTorch inside the test (a GPT-style decoder block, a small CNN) compared with
onnxruntime on the same file. Tolerance: 1e-4 relative/absolute on fp32 outputs (GEMM and
reduction sums in another order than onnxruntime's)."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto as T, helper, numpy_helper

import kaiyuan as ky

from .test_torch_models import Block, ResidualBlock, export, small_cnn

torch = pytest.importorskip("torch")

RTOL = ATOL = 1e-4


def _mlp(rng):
    w = rng.standard_normal((8, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"), helper.make_node("Relu", ["h"], ["y"], name="relu"),
         helper.make_node("Shape", ["x"], ["s"], name="shape")], "mlp",
        [helper.make_tensor_value_info("x", T.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", T.FLOAT, ["batch", 4]), helper.make_tensor_value_info("s", T.INT64, [2])],
        [numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), w


def test_onnxruntime_api_and_dynamic_batch():
    model, w = _mlp(np.random.default_rng(0))
    sess = ky.InferenceSession(model.SerializeToString())
    assert [(i.name, i.shape, i.type) for i in sess.get_inputs()] == [("x", ["batch", 8], "tensor(float)")]
    assert [o.name for o in sess.get_outputs()] == ["y", "s"]
    for batch in (1, 6, 1):
        x = np.random.default_rng(batch).standard_normal((batch, 8)).astype(np.float32)
        y, s = sess.run(None, {"x": x})
        np.testing.assert_allclose(y, np.maximum(x @ w, 0), rtol=RTOL, atol=ATOL)
        assert s.tolist() == [batch, 8] and s.dtype == np.int64
        [s_only] = sess.run(["s"], {"x": x})
        assert s_only.tolist() == [batch, 8]
    assert len(sess._plans) == 2  # one plan per distinct input shape


def test_replayed_runs_compute_each_new_input():
    # run 0 compiles, run 1 captures the launches, runs 2+ replay them: every run must see its feed
    model, w = _mlp(np.random.default_rng(0))
    sess = ky.InferenceSession(model)
    for i in range(5):
        x = np.random.default_rng(10 + i).standard_normal((3, 8)).astype(np.float32)
        y, s = sess.run(None, {"x": x})
        np.testing.assert_allclose(y, np.maximum(x @ w, 0), rtol=RTOL, atol=ATOL)
    assert "1 steps replay captured launches" in sess.plan_for({"x": (3, 8)}).report()


def test_a_padded_conv_replays_with_its_scratch_buffer():
    # conv2d pads its input into a buffer it allocates: the step keeps that buffer and replays; a
    # strided max pool after it replays too; every run computes its own feed (against onnxruntime)
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array((rng.standard_normal((6, 3, 3, 3)) / 5).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                              name="pool")]
    graph = helper.make_graph(nodes, "conv_pool", [helper.make_tensor_value_info("x", T.FLOAT, [1, 3, 20, 20])],
                              [helper.make_tensor_value_info("y", T.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess, ref = ky.InferenceSession(model), ort.InferenceSession(model.SerializeToString())
    for i in range(5):
        x = rng.standard_normal((1, 3, 20, 20)).astype(np.float32)
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], ref.run(None, {"x": x})[0], rtol=RTOL, atol=ATOL)
    plan = sess.plan_for({"x": (1, 3, 20, 20)})
    assert all(s.launches for s in plan.steps)
    assert any(s.scratch for s in plan.steps)


def test_a_chain_of_kernel_steps_replays_as_one_batch():
    # 20 Abs/Neg steps (no fusion): after the capture run they replay as one batch, and each
    # later run still computes its own feed
    from kaiyuan.graph.passes import DEFAULT_PASSES

    nodes = [helper.make_node("Neg" if i % 2 else "Abs", [f"t{i}"], [f"t{i + 1}"], name=f"n{i}") for i in range(20)]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("t0", T.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("t20", T.FLOAT, [2, 8])])
    sess = ky.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
                               passes=list(DEFAULT_PASSES))
    for i in range(5):
        x = np.random.default_rng(i).standard_normal((2, 8)).astype(np.float32)
        [y] = sess.run(None, {"t0": x})
        np.testing.assert_array_equal(y, -np.abs(x))   # Abs, Neg, Abs, ..., Neg
    plan = sess.plan_for({"t0": (2, 8)})
    assert len(plan.segments) == 1 and len(plan.segments[0][1]) == 20


def test_results_do_not_alias_the_arena():
    model, _ = _mlp(np.random.default_rng(0))
    sess = ky.InferenceSession(model)
    x = np.ones((2, 8), np.float32)
    y1 = sess.run(["y"], {"x": x})[0]
    keep = y1.copy()
    sess.run(["y"], {"x": -x})
    np.testing.assert_array_equal(y1, keep)


@pytest.mark.parametrize("feed,error,text", [
    ({}, ky.ArgumentError, "missing input"),
    ({"x": np.ones((2, 8), np.float32), "z": np.ones(1)}, ky.ArgumentError, "unknown input"),
    ({"x": np.ones((2, 8), np.float64)}, ky.ArgumentError, "dtype"),
    ({"x": np.ones((2, 7), np.float32)}, ky.ArgumentError, "x"),
])
def test_bad_feeds_are_argument_errors(feed, error, text):
    model, _ = _mlp(np.random.default_rng(0))
    sess = ky.InferenceSession(model)
    with pytest.raises(error, match=text):
        sess.run(None, feed)
    with pytest.raises(ky.ArgumentError, match="unknown output"):
        sess.run(["nope"], {"x": np.ones((2, 8), np.float32)})


def test_unsupported_operator_fails_at_load_naming_the_node():
    graph = helper.make_graph([helper.make_node("NonMaxSuppression", ["b", "s"], ["y"], name="nms")], "g",
                              [helper.make_tensor_value_info("b", T.FLOAT, [1, 4, 4]),
                               helper.make_tensor_value_info("s", T.FLOAT, [1, 1, 4])],
                              [helper.make_tensor_value_info("y", T.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ky.UnsupportedError, match="nms.*NonMaxSuppression"):
        ky.InferenceSession(model)


@pytest.mark.parametrize("name", ["gpt_block", "cnn", "resnet_block"])
def test_exported_models_match_onnxruntime(name, tmp_path):
    torch.manual_seed(0)
    if name == "gpt_block":
        module, example, axes = Block(), torch.randn(2, 5, 16), {"x": {0: "b", 1: "t"}}
        shapes = [(2, 5, 16), (3, 7, 16)]
    else:
        module = small_cnn() if name == "cnn" else ResidualBlock()
        example, axes = torch.randn(2, 3, 16, 16), {"x": {0: "n"}}
        shapes = [(2, 3, 16, 16), (1, 3, 16, 16)]
    path = export(module.eval(), example, axes, tmp_path / f"{name}.onnx")
    sess = ky.InferenceSession(str(path))
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in shapes:
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        [got], [want] = sess.run(None, {"x": x}), ref.run(None, {"x": x})
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    kinds = {s.op.op_type for s in sess.plan_for({"x": shapes[0]}).steps}
    if name == "gpt_block":
        assert {"Attention", "Linear", "LayerNormalization"} <= kinds
    else:
        assert "BatchNormalization" not in kinds and "Conv" in kinds  # folded into the conv's weights
    if name == "resnet_block":  # every ReLU and the residual Add ran in a conv's store
        assert not {"Relu", "Add"} & kinds
        assert sum("Conv+Add+relu" in line for line in sess.last_fusions) == 1
        assert sum(line.startswith("Conv+relu") for line in sess.last_fusions) == 2


def test_inputs_that_decide_shapes_get_a_plan_per_value():
    # a Reshape whose target shape is a graph input: onnxruntime accepts it; kaiyuan plans per value
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape"),
                               helper.make_node("Relu", ["y"], ["z"], name="relu")], "g",
                              [helper.make_tensor_value_info("x", T.FLOAT, [2, 6]),
                               helper.make_tensor_value_info("shape", T.INT64, [2])],
                              [helper.make_tensor_value_info("z", T.FLOAT, None)])
    sess = ky.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    x = np.arange(-6, 6, dtype=np.float32).reshape(2, 6)
    for shape in ([3, 4], [4, 3], [3, 4]):
        [z] = sess.run(None, {"x": x, "shape": np.array(shape, np.int64)})
        np.testing.assert_array_equal(z, np.maximum(x.reshape(shape), 0))
    assert len(sess._plans) == 2
