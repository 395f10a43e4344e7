"""Simplification: each rule as IR in, IR out; and chains checked to keep the model's values
(run op by op with onnx's reference evaluator before and after)."""

import numpy as np
import pytest

from kaiyuan.graph import GraphModel
from kaiyuan.graph.passes.simplify import simplify

from .irtext import check_pass, module, run_reference

pytestmark = pytest.mark.usefixtures("ref_registry")

X = '%x: tensor<2x3xf32> {kyg.name = "x"}'


def y(t: str) -> str:
    return f'{t} {{kyg.name = "y"}}'


def test_identity_and_inference_dropout_pass_their_input_through():
    before = module(X, y("tensor<2x3xf32>"), """
        %a = "kyg.Identity"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("id")
        %b = "kyg.Dropout"(%a) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("drop")
        %f = "kyg.Constant"() {value = dense<false> : tensor<i1>} : () -> tensor<i1> loc("f")
        %0 = "kyg.none"() : () -> none
        %c, %mask = "kyg.Dropout"(%b, %0, %f) : (tensor<2x3xf32>, none, tensor<i1>) -> (tensor<2x3xf32>, tensor<2x3xi1>) loc("drop2")
        %y = "kyg.Relu"(%c) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("relu")
        func.return %y : tensor<2x3xf32>""")
    after = module(X, y("tensor<2x3xf32>"), """
        %y = "kyg.Relu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("relu")
        func.return %y : tensor<2x3xf32>""")
    check_pass(simplify, before, after)


def test_dropout_in_training_or_with_its_mask_used_is_kept():
    text = module(X, y("tensor<2x3xf32>") + ', tensor<2x3xi1> {kyg.name = "m"}', """
        %t = "kyg.Constant"() {value = dense<true> : tensor<i1>} : () -> tensor<i1> loc("t")
        %0 = "kyg.none"() : () -> none
        %a, %m0 = "kyg.Dropout"(%x, %0, %t) : (tensor<2x3xf32>, none, tensor<i1>) -> (tensor<2x3xf32>, tensor<2x3xi1>) loc("train")
        %y, %m = "kyg.Dropout"(%a) : (tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xi1>) loc("masked")
        func.return %y, %m : tensor<2x3xf32>, tensor<2x3xi1>""")
    check_pass(simplify, text, text)


def test_an_identity_returned_as_a_graph_output_returns_its_input():
    before = module(X, y("tensor<2x3xf32>"), """
        %y = "kyg.Identity"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("id")
        func.return %y : tensor<2x3xf32>""")
    after = module(X, y("tensor<2x3xf32>"), "func.return %x : tensor<2x3xf32>")
    check_pass(simplify, before, after)


def test_casts_to_the_same_dtype_are_removed_and_real_casts_kept():
    before = module(X, y("tensor<2x3xf16>"), """
        %a = "kyg.Cast"(%x) {to = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("same")
        %b = "kyg.CastLike"(%a, %x) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32> loc("like")
        %y = "kyg.Cast"(%b) {to = 10 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf16> loc("to_half")
        func.return %y : tensor<2x3xf16>""")
    after = module(X, y("tensor<2x3xf16>"), """
        %y = "kyg.Cast"(%x) {to = 10 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf16> loc("to_half")
        func.return %y : tensor<2x3xf16>""")
    check_pass(simplify, before, after)


def test_reshapes_squeezes_and_expands_to_the_same_shape_are_removed():
    before = module(X, y("tensor<2x3xf32>"), """
        %s = "kyg.Constant"() {value = dense<[2, 3]> : tensor<2xi64>} : () -> tensor<2xi64> loc("s")
        %a = "kyg.Reshape"(%x, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<2x3xf32> loc("reshape")
        %b = "kyg.Expand"(%a, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<2x3xf32> loc("expand")
        %y = "kyg.Flatten"(%b) {axis = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("flatten")
        func.return %y : tensor<2x3xf32>""")
    after = module(X, y("tensor<2x3xf32>"), "func.return %x : tensor<2x3xf32>")
    check_pass(simplify, before, after)


CHAIN = module(X, y("tensor<3x1x2xf32>") + ', tensor<6xf32> {kyg.name = "flat"}', """
    %ax = "kyg.Constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64> loc("ax")
    %u = "kyg.Unsqueeze"(%x, %ax) : (tensor<2x3xf32>, tensor<1xi64>) -> tensor<1x2x3xf32> loc("unsqueeze")
    %f = "kyg.Flatten"(%u) {axis = 0 : i64} : (tensor<1x2x3xf32>) -> tensor<1x6xf32> loc("flatten")
    %flat = "kyg.Squeeze"(%f, %ax) : (tensor<1x6xf32>, tensor<1xi64>) -> tensor<6xf32> loc("squeeze")
    %s = "kyg.Constant"() {value = dense<[3, 1, 2]> : tensor<3xi64>} : () -> tensor<3xi64> loc("s")
    %y = "kyg.Reshape"(%flat, %s) : (tensor<6xf32>, tensor<3xi64>) -> tensor<3x1x2xf32> loc("reshape")
    func.return %y, %flat : tensor<3x1x2xf32>, tensor<6xf32>""")


def test_a_chain_of_reshape_like_ops_becomes_one_reshape_each_result_used():
    after = module(X, y("tensor<3x1x2xf32>") + ', tensor<6xf32> {kyg.name = "flat"}', """
        %squeeze.shape = "kyg.Constant"() {value = dense<6> : tensor<1xi64>} : () -> tensor<1xi64> loc("squeeze.shape")
        %flat = "kyg.Reshape"(%x, %squeeze.shape) : (tensor<2x3xf32>, tensor<1xi64>) -> tensor<6xf32> loc("squeeze")
        %reshape.shape = "kyg.Constant"() {value = dense<[3, 1, 2]> : tensor<3xi64>} : () -> tensor<3xi64> loc("reshape.shape")
        %y = "kyg.Reshape"(%x, %reshape.shape) : (tensor<2x3xf32>, tensor<3xi64>) -> tensor<3x1x2xf32> loc("reshape")
        func.return %y, %flat : tensor<3x1x2xf32>, tensor<6xf32>""")
    out = check_pass(simplify, CHAIN, after)
    _same_values(CHAIN, out)


def test_reshape_of_reshape_with_unknown_shapes_merges_when_no_dim_is_copied():
    before = module('%x: tensor<?x6xf32> {kyg.name = "x"}', y("tensor<?x2xf32>") + ', tensor<?x3xf32> {kyg.name = "z"}', """
        %s1 = "kyg.Constant"() {value = dense<[-1, 3]> : tensor<2xi64>} : () -> tensor<2xi64> loc("s1")
        %a = "kyg.Reshape"(%x, %s1) : (tensor<?x6xf32>, tensor<2xi64>) -> tensor<?x3xf32> loc("r1")
        %s2 = "kyg.Constant"() {value = dense<[-1, 2]> : tensor<2xi64>} : () -> tensor<2xi64> loc("s2")
        %y = "kyg.Reshape"(%a, %s2) : (tensor<?x3xf32>, tensor<2xi64>) -> tensor<?x2xf32> loc("r2")
        %s3 = "kyg.Constant"() {value = dense<[0, 3]> : tensor<2xi64>} : () -> tensor<2xi64> loc("s3")
        %z = "kyg.Reshape"(%a, %s3) : (tensor<?x3xf32>, tensor<2xi64>) -> tensor<?x3xf32> loc("r3")
        func.return %y, %z : tensor<?x2xf32>, tensor<?x3xf32>""")
    after = before.replace('"kyg.Reshape"(%a, %s2) : (tensor<?x3xf32>', '"kyg.Reshape"(%x, %s2) : (tensor<?x6xf32>')
    check_pass(simplify, before, after)


def test_transposes_compose_cancel_and_identity_ones_go():
    before = module('%x: tensor<2x3x4xf32> {kyg.name = "x"}', y("tensor<3x4x2xf32>") + ', tensor<2x3x4xf32> {kyg.name = "z"}', """
        %a = "kyg.Transpose"(%x) {perm = [1 : i64, 0 : i64, 2 : i64]} : (tensor<2x3x4xf32>) -> tensor<3x2x4xf32> loc("t1")
        %y = "kyg.Transpose"(%a) {perm = [0 : i64, 2 : i64, 1 : i64]} : (tensor<3x2x4xf32>) -> tensor<3x4x2xf32> loc("t2")
        %b = "kyg.Transpose"(%x) : (tensor<2x3x4xf32>) -> tensor<4x3x2xf32> loc("rev")
        %c = "kyg.Transpose"(%b) : (tensor<4x3x2xf32>) -> tensor<2x3x4xf32> loc("rev2")
        %z = "kyg.Transpose"(%c) {perm = [0 : i64, 1 : i64, 2 : i64]} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32> loc("noop")
        func.return %y, %z : tensor<3x4x2xf32>, tensor<2x3x4xf32>""")
    after = module('%x: tensor<2x3x4xf32> {kyg.name = "x"}', y("tensor<3x4x2xf32>") + ', tensor<2x3x4xf32> {kyg.name = "z"}', """
        %y = "kyg.Transpose"(%x) {perm = [1 : i64, 2 : i64, 0 : i64]} : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32> loc("t2")
        func.return %y, %x : tensor<3x4x2xf32>, tensor<2x3x4xf32>""")
    out = check_pass(simplify, before, after)
    _same_values(before, out)


def test_a_transpose_moving_only_unit_dims_is_a_reshape():
    before = module('%x: tensor<2x1x3xf32> {kyg.name = "x"}', y("tensor<2x3x1xf32>"), """
        %y = "kyg.Transpose"(%x) {perm = [0 : i64, 2 : i64, 1 : i64]} : (tensor<2x1x3xf32>) -> tensor<2x3x1xf32> loc("t")
        func.return %y : tensor<2x3x1xf32>""")
    after = module('%x: tensor<2x1x3xf32> {kyg.name = "x"}', y("tensor<2x3x1xf32>"), """
        %t.shape = "kyg.Constant"() {value = dense<[2, 3, 1]> : tensor<3xi64>} : () -> tensor<3xi64> loc("t.shape")
        %y = "kyg.Reshape"(%x, %t.shape) : (tensor<2x1x3xf32>, tensor<3xi64>) -> tensor<2x3x1xf32> loc("t")
        func.return %y : tensor<2x3x1xf32>""")
    _same_values(before, check_pass(simplify, before, after))


def test_a_transpose_that_reorders_data_is_kept():
    text = module('%x: tensor<2x1x3xf32> {kyg.name = "x"}', y("tensor<3x1x2xf32>"), """
        %y = "kyg.Transpose"(%x) {perm = [2 : i64, 1 : i64, 0 : i64]} : (tensor<2x1x3xf32>) -> tensor<3x1x2xf32> loc("t")
        func.return %y : tensor<3x1x2xf32>""")
    check_pass(simplify, text, text)


@pytest.mark.parametrize("opset, allowzero", [(17, ' {allowzero = 1 : i64}'), (13, None)])
def test_an_empty_result_reshape_sets_allowzero_or_is_kept(opset, allowzero):
    before = module('%x: tensor<0x3xf32> {kyg.name = "x"}', y("tensor<3x0xf32>"), """
        %ax = "kyg.Constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64> loc("ax")
        %a = "kyg.Unsqueeze"(%x, %ax) : (tensor<0x3xf32>, tensor<1xi64>) -> tensor<1x0x3xf32> loc("u")
        %s = "kyg.Constant"() {value = dense<[3, 0]> : tensor<2xi64>} : () -> tensor<2xi64> loc("s")
        %y = "kyg.Reshape"(%a, %s) : (tensor<1x0x3xf32>, tensor<2xi64>) -> tensor<3x0xf32> loc("r")
        func.return %y : tensor<3x0xf32>""", opset=opset)
    if allowzero is None:
        check_pass(simplify, before, before)
        return
    after = module('%x: tensor<0x3xf32> {kyg.name = "x"}', y("tensor<3x0xf32>"), f"""
        %r.shape = "kyg.Constant"() {{value = dense<[3, 0]> : tensor<2xi64>}} : () -> tensor<2xi64> loc("r.shape")
        %y = "kyg.Reshape"(%x, %r.shape){allowzero} : (tensor<0x3xf32>, tensor<2xi64>) -> tensor<3x0xf32> loc("r")
        func.return %y : tensor<3x0xf32>""", opset=opset)
    check_pass(simplify, before, after)


def _same_values(before_text: str, after: GraphModel) -> None:
    before = GraphModel.from_text(before_text)
    rng = np.random.default_rng(0)
    feeds = {v.name: rng.standard_normal(v.shape).astype(v.dtype) for v in before.inputs}
    for want, got in zip(run_reference(before, feeds), run_reference(after, feeds)):
        np.testing.assert_array_equal(got, want)
