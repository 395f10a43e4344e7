"""Dead-code elimination: IR in, IR out; unused weights dropped, graph inputs and outputs kept."""

import numpy as np
import pytest

from kaiyuan.graph.passes.dce import dce

from .irtext import check_pass, module

pytestmark = pytest.mark.usefixtures("ref_registry")


def test_unused_ops_and_weights_go_inputs_and_partly_used_ops_stay():
    before = module('%x: tensor<4xf32> {kyg.name = "x"}, %unused: tensor<2xf32> {kyg.name = "unused"}',
                    'tensor<2xf32> {kyg.name = "y"}', """
        %w = "kyg.weight"() {name = "dead.w"} : () -> tensor<4xf32>
        %d1 = "kyg.Add"(%x, %w) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("dead1")
        %d2 = "kyg.Relu"(%d1) : (tensor<4xf32>) -> tensor<4xf32> loc("dead2")
        %0 = "kyg.none"() : () -> none
        %y, %z = "kyg.Split"(%x) {axis = 0 : i64, num_outputs = 2 : i64} : (tensor<4xf32>) -> (tensor<2xf32>, tensor<2xf32>) loc("split")
        func.return %y : tensor<2xf32>""", opset=18)
    after = module('%x: tensor<4xf32> {kyg.name = "x"}, %unused: tensor<2xf32> {kyg.name = "unused"}',
                   'tensor<2xf32> {kyg.name = "y"}', """
        %y, %z = "kyg.Split"(%x) {axis = 0 : i64, num_outputs = 2 : i64} : (tensor<4xf32>) -> (tensor<2xf32>, tensor<2xf32>) loc("split")
        func.return %y : tensor<2xf32>""", opset=18)
    out = check_pass(dce, before, after, {"dead.w": np.ones(4, np.float32)})
    assert out.weights == {}
    assert [v.name for v in out.inputs] == ["x", "unused"]
