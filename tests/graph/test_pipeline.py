"""The default pipeline: import → specialise → run_passes on a small exported-style model, with
the exact IR at the end, the dump of every stage, and custom pass lists."""

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from kaiyuan.graph import DEFAULT_PASSES, GraphModel, import_onnx, run_passes, specialise
from kaiyuan.graph.passes import cse, dce

from .irtext import module, run_reference

pytestmark = pytest.mark.usefixtures("ref_registry")

W = np.arange(16, dtype=np.float32).reshape(4, 4) / 16


def exported_style_model():
    """What exporters write: Identity and same-dtype Cast, one Shape per use, a transpose pair
    that cancels, a weight transposed in the graph, and a value nobody uses."""
    def const(name, values):
        return helper.make_node("Constant", [], [name], name=name, value=numpy_helper.from_array(np.array(values, np.int64)))

    nodes = [
        helper.make_node("Identity", ["x"], ["a"], name="id"),
        helper.make_node("Cast", ["a"], ["b"], name="cast", to=T.FLOAT),
        helper.make_node("Shape", ["b"], ["s1"], name="shape1"),
        helper.make_node("Shape", ["b"], ["s2"], name="shape2"),
        const("zero", 0), const("axes", [0]), const("tail", [2, 2]),
        helper.make_node("Gather", ["s1", "zero"], ["n1"], name="gather1", axis=0),
        helper.make_node("Gather", ["s2", "zero"], ["n2"], name="gather2", axis=0),
        helper.make_node("Unsqueeze", ["n1", "axes"], ["u1"], name="unsqueeze1"),
        helper.make_node("Unsqueeze", ["n2", "axes"], ["u2"], name="unsqueeze2"),
        helper.make_node("Concat", ["u1", "tail"], ["shape"], name="concat", axis=0),
        helper.make_node("Reshape", ["b", "shape"], ["r"], name="reshape"),
        helper.make_node("Transpose", ["r"], ["t1"], name="t1", perm=[0, 2, 1]),
        helper.make_node("Transpose", ["t1"], ["t2"], name="t2", perm=[0, 2, 1]),
        helper.make_node("Relu", ["t2"], ["y"], name="relu"),
        helper.make_node("Transpose", ["W"], ["wt"], name="w_t", perm=[1, 0]),
        helper.make_node("MatMul", ["b", "wt"], ["z"], name="matmul"),
        helper.make_node("Neg", ["u2"], ["unused"], name="dead"),
    ]
    graph = helper.make_graph(nodes, "pipeline", [helper.make_tensor_value_info("x", T.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", T.FLOAT, ["batch", 2, 2]),
                               helper.make_tensor_value_info("z", T.FLOAT, ["batch", 4])],
                              [numpy_helper.from_array(W, "W")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


FINAL = module('%x: tensor<3x4xf32> {kyg.name = "x"}',
               'tensor<3x2x2xf32> {kyg.name = "y"}, tensor<3x4xf32> {kyg.name = "z"}', """
    %shape = "kyg.Constant"() {value = dense<[3, 2, 2]> : tensor<3xi64>} : () -> tensor<3xi64> loc("concat")
    %r = "kyg.Reshape"(%x, %shape) : (tensor<3x4xf32>, tensor<3xi64>) -> tensor<3x2x2xf32> loc("reshape")
    %y = "kyg.Relu"(%r) : (tensor<3x2x2xf32>) -> tensor<3x2x2xf32> loc("relu")
    %wt = "kyg.weight"() {name = "w_t"} : () -> tensor<4x4xf32>
    %z = "kyg.MatMul"(%x, %wt) : (tensor<3x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32> loc("matmul")
    func.return %y, %z : tensor<3x2x2xf32>, tensor<3x4xf32>
    """)


def test_import_specialise_and_the_default_passes_give_the_expected_ir():
    model = import_onnx(exported_style_model())
    dump = []
    final = run_passes(specialise(model, {"x": (3, 4)}), dump=dump)
    assert final.text() == FINAL
    assert [name for name, _ in dump] == [name for name, _ in DEFAULT_PASSES] == ["fold", "simplify", "cse", "dce"]
    assert dump[-1][1] == FINAL
    assert list(final.weights) == ["w_t"]
    np.testing.assert_array_equal(final.weights["w_t"], W.T)
    final.verify()
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    for want, got in zip(run_reference(specialise(model, {"x": (3, 4)}), {"x": x}), run_reference(final, {"x": x})):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_passes_work_on_models_that_are_not_specialised():
    model = run_passes(import_onnx(exported_style_model()))
    kinds = [op.name for op in model.block.ops]
    assert "kyg.Identity" not in kinds and "kyg.Cast" not in kinds and "kyg.Neg" not in kinds
    assert kinds.count("kyg.Shape") == 1 and kinds.count("kyg.Transpose") == 0
    assert [v.shape for v in model.inputs] == [("batch", 4)]
    model.verify()


def test_custom_pass_lists_take_bare_functions_and_named_pairs():
    model = GraphModel.from_text(FINAL, {"w_t": W.T.copy()})
    dump = []
    out = run_passes(model, [cse, ("my-dce", dce)], dump=dump)
    assert [name for name, _ in dump] == ["cse", "my-dce"]
    assert out.text() == FINAL
