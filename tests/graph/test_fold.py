"""Constant folding: IR in, IR out, and the values the folded constants hold."""

import numpy as np
import pytest

from kaiyuan.graph import GraphModel
from kaiyuan.graph.passes import fold
from kaiyuan.graph.passes.fold import fold_constants

from .irtext import check_pass, module

pytestmark = pytest.mark.usefixtures("ref_registry")

W = np.arange(20, dtype=np.float32).reshape(4, 5)


def test_an_op_on_weights_becomes_a_weight_and_the_old_weight_is_dropped():
    before = module('%x: tensor<2x5xf32> {kyg.name = "x"}', 'tensor<2x4xf32> {kyg.name = "y"}', """
        %w = "kyg.weight"() {name = "fc.w"} : () -> tensor<4x5xf32>
        %wt = "kyg.Transpose"(%w) {perm = [1 : i64, 0 : i64]} : (tensor<4x5xf32>) -> tensor<5x4xf32> loc("fc/t")
        %y = "kyg.MatMul"(%x, %wt) : (tensor<2x5xf32>, tensor<5x4xf32>) -> tensor<2x4xf32> loc("fc/mm")
        func.return %y : tensor<2x4xf32>""")
    after = module('%x: tensor<2x5xf32> {kyg.name = "x"}', 'tensor<2x4xf32> {kyg.name = "y"}', """
        %wt = "kyg.weight"() {name = "fc/t"} : () -> tensor<5x4xf32>
        %y = "kyg.MatMul"(%x, %wt) : (tensor<2x5xf32>, tensor<5x4xf32>) -> tensor<2x4xf32> loc("fc/mm")
        func.return %y : tensor<2x4xf32>""")
    out = check_pass(fold_constants, before, after, {"fc.w": W})
    assert list(out.weights) == ["fc/t"]
    np.testing.assert_array_equal(out.weights["fc/t"], W.T)


def test_shape_arithmetic_folds_to_inline_constants_and_shape_reads_static_shapes():
    before = module('%x: tensor<2x3xf32> {kyg.name = "x"}', 'tensor<3x2xf32> {kyg.name = "y"}', """
        %s = "kyg.Shape"(%x) : (tensor<2x3xf32>) -> tensor<2xi64> loc("shape")
        %i = "kyg.Constant"() {value = dense<[1, 0]> : tensor<2xi64>} : () -> tensor<2xi64> loc("i")
        %g = "kyg.Gather"(%s, %i) {axis = 0 : i64} : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64> loc("gather")
        %y = "kyg.Reshape"(%x, %g) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<3x2xf32> loc("reshape")
        func.return %y : tensor<3x2xf32>""")
    after = module('%x: tensor<2x3xf32> {kyg.name = "x"}', 'tensor<3x2xf32> {kyg.name = "y"}', """
        %g = "kyg.Constant"() {value = dense<[3, 2]> : tensor<2xi64>} : () -> tensor<2xi64> loc("gather")
        %y = "kyg.Reshape"(%x, %g) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<3x2xf32> loc("reshape")
        func.return %y : tensor<3x2xf32>""")
    check_pass(fold_constants, before, after)


@pytest.mark.filterwarnings("ignore:.*encountered in log:RuntimeWarning")
def test_multiple_results_absent_inputs_and_non_finite_values():
    before = module("", 'tensor<2xf32> {kyg.name = "a"}, tensor<1xf32> {kyg.name = "b"}', """
        %0 = "kyg.none"() : () -> none
        %c = "kyg.Constant"() {value = dense<[-1.000000e+00, 0.000000e+00, 4.000000e+00]> : tensor<3xf32>} : () -> tensor<3xf32> loc("c")
        %hi = "kyg.Constant"() {value = dense<2.000000e+00> : tensor<f32>} : () -> tensor<f32> loc("hi")
        %l = "kyg.Log"(%c) : (tensor<3xf32>) -> tensor<3xf32> loc("log")
        %cl = "kyg.Clip"(%l, %0, %hi) : (tensor<3xf32>, none, tensor<f32>) -> tensor<3xf32> loc("clip")
        %a, %b = "kyg.Split"(%cl) {axis = 0 : i64, num_outputs = 2 : i64} : (tensor<3xf32>) -> (tensor<2xf32>, tensor<1xf32>) loc("split")
        func.return %a, %b : tensor<2xf32>, tensor<1xf32>""", opset=18)
    after = module("", 'tensor<2xf32> {kyg.name = "a"}, tensor<1xf32> {kyg.name = "b"}', """
        %a = "kyg.Constant"() {value = dense<"0x0000C0FF000080FF"> : tensor<2xf32>} : () -> tensor<2xf32> loc("split:0")
        %b = "kyg.Constant"() {value = dense<1.38629436> : tensor<1xf32>} : () -> tensor<1xf32> loc("split:1")
        func.return %a, %b : tensor<2xf32>, tensor<1xf32>""", opset=18)
    check_pass(fold_constants, before, after)


KEPT = module('%x: tensor<3xf32> {kyg.name = "x"}', 'tensor<3xf32> {kyg.name = "y"}, tensor<3xf32> {kyg.name = "r"}, '
              'tensor<3xf32> {kyg.name = "f"}', """
    %c = "kyg.Constant"() {value = dense<[1.000000e+00, 2.000000e+00, 3.000000e+00]> : tensor<3xf32>} : () -> tensor<3xf32> loc("c")
    %y = "kyg.Add"(%x, %c) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32> loc("add")
    %r = "kyg.RandomNormalLike"(%c) : (tensor<3xf32>) -> tensor<3xf32> loc("random")
    %f = "kyg.kaiyuan.FusedTest"(%c) : (tensor<3xf32>) -> tensor<3xf32> loc("fused")
    func.return %y, %r, %f : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>""")


def test_non_constant_random_and_kaiyuan_ops_are_kept():
    check_pass(fold_constants, KEPT, KEPT)


def test_outputs_over_the_size_cap_are_not_folded(monkeypatch):
    text = module("", 'tensor<2x3xf32> {kyg.name = "y"}', """
        %s = "kyg.Constant"() {value = dense<[2, 3]> : tensor<2xi64>} : () -> tensor<2xi64> loc("s")
        %y = "kyg.ConstantOfShape"(%s) : (tensor<2xi64>) -> tensor<2x3xf32> loc("fill")
        func.return %y : tensor<2x3xf32>""")
    monkeypatch.setattr(fold, "FOLD_MAX_ELEMENTS", 5)
    check_pass(fold_constants, text, text)
    monkeypatch.setattr(fold, "FOLD_MAX_ELEMENTS", 6)
    out = fold_constants(GraphModel.from_text(text))
    assert [op.name for op in out.block.ops] == ["kyg.weight", "func.return"]
    np.testing.assert_array_equal(out.weights["fill"], np.zeros((2, 3), np.float32))


def test_an_op_the_reference_evaluator_cannot_run_is_kept(monkeypatch):
    def broken(*args):
        raise RuntimeError("no implementation")

    monkeypatch.setattr(fold, "evaluate", broken)
    text = module("", 'tensor<3xf32> {kyg.name = "y"}', """
        %c = "kyg.Constant"() {value = dense<[1.000000e+00, 2.000000e+00, 3.000000e+00]> : tensor<3xf32>} : () -> tensor<3xf32> loc("c")
        %y = "kyg.Neg"(%c) : (tensor<3xf32>) -> tensor<3xf32> loc("neg")
        func.return %y : tensor<3xf32>""")
    check_pass(fold_constants, text, text)


@pytest.mark.parametrize("dtype", ["float32", "float16", "int32", "uint8", "bool"])
def test_folded_values_keep_the_inferred_dtype(dtype):
    arr = np.array([1, 0, 1], dtype)
    out = fold.evaluate("Identity", {}, [arr], 1, 17)
    assert out[0].dtype == arr.dtype
