"""Common-subexpression elimination: IR in, IR out."""

import numpy as np
import pytest

from kaiyuan.graph.passes.cse import cse

from .irtext import check_pass, module

pytestmark = pytest.mark.usefixtures("ref_registry")

ARGS = '%x: tensor<4xf32> {kyg.name = "x"}'
OUTS = 'tensor<4xf32> {kyg.name = "a"}, tensor<4xf32> {kyg.name = "b"}, tensor<4xf32> {kyg.name = "c"}'


def test_repeated_ops_constants_and_weight_references_are_merged():
    before = module(ARGS, OUTS, """
        %w1 = "kyg.weight"() {name = "w"} : () -> tensor<4xf32>
        %w2 = "kyg.weight"() {name = "w"} : () -> tensor<4xf32>
        %k1 = "kyg.Constant"() {value = dense<2.000000e+00> : tensor<f32>} : () -> tensor<f32> loc("k1")
        %k2 = "kyg.Constant"() {value = dense<2.000000e+00> : tensor<f32>} : () -> tensor<f32> loc("k2")
        %p = "kyg.Mul"(%x, %k1) : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32> loc("mul1")
        %q = "kyg.Mul"(%x, %k2) : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32> loc("mul2")
        %a = "kyg.Add"(%p, %w1) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("add1")
        %b = "kyg.Add"(%q, %w2) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("add2")
        %c = "kyg.Add"(%w2, %q) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("add3")
        func.return %a, %b, %c : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>""")
    after = module(ARGS, OUTS, """
        %w1 = "kyg.weight"() {name = "w"} : () -> tensor<4xf32>
        %k1 = "kyg.Constant"() {value = dense<2.000000e+00> : tensor<f32>} : () -> tensor<f32> loc("k1")
        %p = "kyg.Mul"(%x, %k1) : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32> loc("mul1")
        %a = "kyg.Add"(%p, %w1) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("add1")
        %c = "kyg.Add"(%w1, %p) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("add3")
        func.return %a, %a, %c : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>""")
    check_pass(cse, before, after, {"w": np.ones(4, np.float32)})


def test_different_attributes_and_random_ops_are_not_merged():
    text = module(ARGS, OUTS, """
        %a = "kyg.LeakyRelu"(%x) {alpha = 1.000000e-01 : f32} : (tensor<4xf32>) -> tensor<4xf32> loc("l1")
        %b = "kyg.LeakyRelu"(%x) {alpha = 2.000000e-01 : f32} : (tensor<4xf32>) -> tensor<4xf32> loc("l2")
        %r1 = "kyg.RandomNormalLike"(%x) : (tensor<4xf32>) -> tensor<4xf32> loc("r1")
        %c = "kyg.RandomNormalLike"(%x) : (tensor<4xf32>) -> tensor<4xf32> loc("r2")
        func.return %a, %b, %c : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>""")
    text = text.replace('    func.return', '    %s = "kyg.Add"(%r1, %c) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("use")\n    func.return')
    check_pass(cse, text, text)
