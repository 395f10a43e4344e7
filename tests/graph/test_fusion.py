"""Fusion passes (kaiyuan.graph.fusion) as IR text in, exact IR text out, plus: a fused model gives
the same outputs as the unfused one (run through InferenceSession on cpu)."""

import numpy as np
import pytest
from onnx import TensorProto as T, helper, numpy_helper

import kaiyuan as ky
from kaiyuan.graph import GraphModel
from kaiyuan.graph.fusion import fuse_attention, fuse_linear, fuse_sibling_linears, pack_weights
from kaiyuan.graph.passes import DEFAULT_PASSES

from .irtext import check_pass, module

X = '%x: tensor<4x8xf32> {kyg.name = "x"}'
Y = 'tensor<4x16xf32> {kyg.name = "y"}'
W = {"w": np.ones((8, 16), np.float32), "b": np.ones((16,), np.float32)}


def test_matmul_bias_gelu_residual_become_one_linear():
    before = module(X + ', %r: tensor<4x16xf32> {kyg.name = "r"}', Y, """
        %w = "kyg.weight"() {name = "w"} : () -> tensor<8x16xf32>
        %b = "kyg.weight"() {name = "b"} : () -> tensor<16xf32>
        %s2 = "kyg.Constant"() {value = dense<1.41421354> : tensor<f32>} : () -> tensor<f32> loc("s2")
        %one = "kyg.Constant"() {value = dense<1.000000e+00> : tensor<f32>} : () -> tensor<f32> loc("one")
        %half = "kyg.Constant"() {value = dense<5.000000e-01> : tensor<f32>} : () -> tensor<f32> loc("half")
        %h = "kyg.MatMul"(%x, %w) : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32> loc("mm")
        %z = "kyg.Add"(%b, %h) : (tensor<16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32> loc("bias")
        %d = "kyg.Div"(%z, %s2) : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32> loc("div")
        %e = "kyg.Erf"(%d) : (tensor<4x16xf32>) -> tensor<4x16xf32> loc("erf")
        %t = "kyg.Add"(%e, %one) : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32> loc("plus1")
        %m = "kyg.Mul"(%z, %t) : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32> loc("mul")
        %g = "kyg.Mul"(%m, %half) : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32> loc("gelu")
        %y = "kyg.Add"(%g, %r) : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32> loc("residual")
        func.return %y : tensor<4x16xf32>""")
    after = module(X + ', %r: tensor<4x16xf32> {kyg.name = "r"}', Y, """
        %w = "kyg.weight"() {name = "w"} : () -> tensor<8x16xf32>
        %b = "kyg.weight"() {name = "b"} : () -> tensor<16xf32>
        %y = "kyg.kaiyuan.Linear"(%x, %w, %b, %r) {activation = "gelu"} : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32> loc("residual")
        func.return %y : tensor<4x16xf32>""")
    out = check_pass(lambda m: _dce(fuse_linear(m)), before, after, W)
    assert out is not None


def test_a_value_used_twice_is_not_fused_away():
    # the bias add's result is also a graph output: the MatMul+Add may fuse, the Relu may not take it
    text = module(X, Y + ', tensor<4x16xf32> {kyg.name = "z"}', """
        %w = "kyg.weight"() {name = "w"} : () -> tensor<8x16xf32>
        %h = "kyg.MatMul"(%x, %w) : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32> loc("mm")
        %y = "kyg.Relu"(%h) : (tensor<4x16xf32>) -> tensor<4x16xf32> loc("relu")
        func.return %y, %h : tensor<4x16xf32>, tensor<4x16xf32>""")
    check_pass(lambda m: _dce(fuse_linear(m)), text, text, W)


ATT_ARGS = ('%q: tensor<1x2x5x4xf32> {kyg.name = "q"}, %kt: tensor<1x5x2x4xf32> {kyg.name = "k"}, '
            '%v: tensor<1x2x5x4xf32> {kyg.name = "v"}, %mask: tensor<1x1x5x5xf32> {kyg.name = "mask"}')
ATT_OUT = 'tensor<1x2x5x4xf32> {kyg.name = "o"}'


def test_bert_style_attention_becomes_one_kernel():
    before = module(ATT_ARGS, ATT_OUT, """
        %c = "kyg.Constant"() {value = dense<0.707106769> : tensor<f32>} : () -> tensor<f32> loc("c")
        %zero = "kyg.Constant"() {value = dense<0.000000e+00> : tensor<f32>} : () -> tensor<f32> loc("zero")
        %k2 = "kyg.Transpose"(%kt) {perm = [0 : i64, 2 : i64, 3 : i64, 1 : i64]} : (tensor<1x5x2x4xf32>) -> tensor<1x2x4x5xf32> loc("kT")
        %qs = "kyg.Mul"(%q, %c) : (tensor<1x2x5x4xf32>, tensor<f32>) -> tensor<1x2x5x4xf32> loc("q_scale")
        %ks = "kyg.Mul"(%k2, %c) : (tensor<1x2x4x5xf32>, tensor<f32>) -> tensor<1x2x4x5xf32> loc("k_scale")
        %s = "kyg.MatMul"(%qs, %ks) : (tensor<1x2x5x4xf32>, tensor<1x2x4x5xf32>) -> tensor<1x2x5x5xf32> loc("scores")
        %sm = "kyg.Add"(%s, %mask) : (tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32>) -> tensor<1x2x5x5xf32> loc("masked")
        %p = "kyg.Softmax"(%sm) {axis = -1 : i64} : (tensor<1x2x5x5xf32>) -> tensor<1x2x5x5xf32> loc("softmax")
        %n = "kyg.IsNaN"(%p) : (tensor<1x2x5x5xf32>) -> tensor<1x2x5x5xi1> loc("isnan")
        %p2 = "kyg.Where"(%n, %zero, %p) : (tensor<1x2x5x5xi1>, tensor<f32>, tensor<1x2x5x5xf32>) -> tensor<1x2x5x5xf32> loc("guard")
        %o = "kyg.MatMul"(%p2, %v) : (tensor<1x2x5x5xf32>, tensor<1x2x5x4xf32>) -> tensor<1x2x5x4xf32> loc("pv")
        func.return %o : tensor<1x2x5x4xf32>""")
    after = module(ATT_ARGS, ATT_OUT, """
        %0 = "kyg.Transpose"(%kt) {perm = [0 : i64, 2 : i64, 1 : i64, 3 : i64]} : (tensor<1x5x2x4xf32>) -> tensor<1x2x5x4xf32> loc("pv/key")
        %o = "kyg.kaiyuan.Attention"(%q, %0, %v, %mask) {scale = 0.49999997 : f32} : (tensor<1x2x5x4xf32>, tensor<1x2x5x4xf32>, tensor<1x2x5x4xf32>, tensor<1x1x5x5xf32>) -> tensor<1x2x5x4xf32> loc("pv")
        func.return %o : tensor<1x2x5x4xf32>""")
    check_pass(lambda m: _dce(fuse_attention(m)), before, after)


def _dce(model: GraphModel) -> GraphModel:
    from kaiyuan.graph.passes import dce

    return dce(model)


# ------------------------------------------------------------------ numerics, fused vs not
def _mlp_model(rng):
    w1 = rng.standard_normal((16, 32)).astype(np.float32) * 0.3
    b1 = rng.standard_normal(32).astype(np.float32)
    w2 = rng.standard_normal((32, 16)).astype(np.float32) * 0.3
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Div", ["hb", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["e1"]), helper.make_node("Mul", ["hb", "e1"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["g"]), helper.make_node("MatMul", ["g", "w2"], ["o"]),
             helper.make_node("Add", ["o", "x"], ["y"])]
    inits = [numpy_helper.from_array(a, n) for a, n in
             [(w1, "w1"), (b1, "b1"), (w2, "w2"), (np.array(np.sqrt(2), np.float32), "sqrt2"),
              (np.array(1, np.float32), "one"), (np.array(0.5, np.float32), "half")]]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", T.FLOAT, ["n", 16])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["n", 16])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_fused_mlp_matches_unfused(rng=np.random.default_rng(0)):
    model = _mlp_model(rng)
    x = rng.standard_normal((7, 16)).astype(np.float32)
    fused = ky.InferenceSession(model)
    plain = ky.InferenceSession(model, passes=list(DEFAULT_PASSES))
    [a], [b] = fused.run(None, {"x": x}), plain.run(None, {"x": x})
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    kinds = [s.op.op_type for s in fused.plan_for({"x": (7, 16)}).steps]
    assert kinds == ["Linear", "Linear"]
    assert any("Linear+gelu" in line for line in fused.last_fusions)


EW_ARGS = '%x: tensor<4x8xf32> {kyg.name = "x"}, %b: tensor<8xf32> {kyg.name = "b"}'
EW_OUT = 'tensor<4x8xf32> {kyg.name = "y"}'


def test_elementwise_chain_becomes_one_expression():
    from kaiyuan.graph.fusion_elementwise import fuse_elementwise

    before = module(EW_ARGS, EW_OUT, """
        %two = "kyg.Constant"() {value = dense<2.000000e+00> : tensor<f32>} : () -> tensor<f32> loc("two")
        %s = "kyg.Sigmoid"(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32> loc("sig")
        %m = "kyg.Mul"(%x, %s) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32> loc("silu")
        %a = "kyg.Add"(%m, %b) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32> loc("bias")
        %y = "kyg.Mul"(%a, %two) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32> loc("scale")
        func.return %y : tensor<4x8xf32>""")
    after = module(EW_ARGS, EW_OUT, """
        %y = "kyg.kaiyuan.Elementwise"(%x, %b) {expr = "mul(add(mul($0,sigmoid($0)),$1),float32(2.0))"} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32> loc("scale")
        func.return %y : tensor<4x8xf32>""")
    out = check_pass(lambda m: _dce(fuse_elementwise(m)), before, after)
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    b = np.arange(8, dtype=np.float32)
    from kaiyuan.graph.executor import build_plan

    plan = build_plan(out)
    [y] = plan.run({"x": x, "b": b})
    np.testing.assert_allclose(y, (x / (1 + np.exp(-x)) + b) * 2, rtol=1e-6, atol=1e-6)


def test_elementwise_fusion_stops_at_values_used_elsewhere():
    from kaiyuan.graph.fusion_elementwise import fuse_elementwise

    text = module(EW_ARGS, EW_OUT + ', tensor<4x8xf32> {kyg.name = "s"}', """
        %s = "kyg.Sigmoid"(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32> loc("sig")
        %y = "kyg.Add"(%s, %b) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32> loc("bias")
        func.return %y, %s : tensor<4x8xf32>, tensor<4x8xf32>""")
    check_pass(lambda m: _dce(fuse_elementwise(m)), text, text)


def test_expression_text_round_trips():
    from kaiyuan.ops.fused import format_expr, parse_expr

    for e in [("where", ("in", 0), ("const", float("-inf"), "float32"), ("const", -3, "int64")),
              ("isinf", ("in", 1), True, False), ("cast:float16", ("mul", ("in", 0), ("in", 2)))]:
        assert parse_expr(format_expr(e)) == e
    with pytest.raises(ValueError):
        parse_expr("add($0,")


@pytest.mark.parametrize("opset", [13, 17])
def test_decomposed_layer_norm_becomes_layer_normalization(tmp_path, opset):
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    class DecomposedLN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.g, self.b = torch.nn.Parameter(torch.randn(16)), torch.nn.Parameter(torch.randn(16))

        def forward(self, x):
            d = x - x.mean(-1, keepdim=True)
            return d / torch.sqrt((d ** 2).mean(-1, keepdim=True) + 1e-5) * self.g + self.b

    x = torch.randn(3, 5, 16)
    path = str(tmp_path / "ln.onnx")
    torch.onnx.export(DecomposedLN(), (x,), path, dynamo=False, opset_version=opset, input_names=["x"],
                      output_names=["y"])
    sess = ky.InferenceSession(path)
    [y] = sess.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(y, ort.InferenceSession(path).run(None, {"x": x.numpy()})[0], rtol=1e-5, atol=1e-5)
    assert [s.op.op_type for s in sess.plan_for({"x": (3, 5, 16)}).steps] == ["LayerNormalization"]
    assert sess.last_fusions[0].startswith("LayerNormalization")


CONV_ARGS = '%x: tensor<1x4x6x6xf32> {kyg.name = "x"}'
CONV_OUT = 'tensor<1x4x6x6xf32> {kyg.name = "y"}'
CONV_W = {"w": np.ones((4, 4, 3, 3), np.float32), "b": np.ones((4,), np.float32)}
CONV = ('"kyg.Conv"(%x, %w, %b) {pads = [1 : i64, 1 : i64, 1 : i64, 1 : i64]} : (tensor<1x4x6x6xf32>, tensor<4x4x3x3xf32>, '
        'tensor<4xf32>) -> tensor<1x4x6x6xf32>')


def test_conv_residual_add_and_relu_become_one_conv():
    from kaiyuan.graph.fusion import fuse_conv_epilogue

    before = module(CONV_ARGS, CONV_OUT, f"""
        %w = "kyg.weight"() {{name = "w"}} : () -> tensor<4x4x3x3xf32>
        %b = "kyg.weight"() {{name = "b"}} : () -> tensor<4xf32>
        %c = {CONV} loc("conv")
        %s = "kyg.Add"(%c, %x) : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32> loc("add")
        %y = "kyg.Relu"(%s) : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32> loc("relu")
        func.return %y : tensor<1x4x6x6xf32>""")
    after = module(CONV_ARGS, CONV_OUT, """
        %w = "kyg.weight"() {name = "w"} : () -> tensor<4x4x3x3xf32>
        %b = "kyg.weight"() {name = "b"} : () -> tensor<4xf32>
        %y = "kyg.kaiyuan.Conv"(%x, %w, %b, %x) {pads = [1 : i64, 1 : i64, 1 : i64, 1 : i64], activation = "relu"} : (tensor<1x4x6x6xf32>, tensor<4x4x3x3xf32>, tensor<4xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32> loc("relu")
        func.return %y : tensor<1x4x6x6xf32>""")
    check_pass(lambda m: _dce(fuse_conv_epilogue(m)), before, after, CONV_W)


def test_conv_output_used_twice_keeps_its_add():
    # the conv's result is also a graph output: nothing may be fused into its store
    from kaiyuan.graph.fusion import fuse_conv_epilogue

    text = module(CONV_ARGS, CONV_OUT + ', tensor<1x4x6x6xf32> {kyg.name = "c"}', f"""
        %w = "kyg.weight"() {{name = "w"}} : () -> tensor<4x4x3x3xf32>
        %b = "kyg.weight"() {{name = "b"}} : () -> tensor<4xf32>
        %c = {CONV} loc("conv")
        %y = "kyg.Relu"(%c) : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32> loc("relu")
        func.return %y, %c : tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>""")
    check_pass(lambda m: _dce(fuse_conv_epilogue(m)), text, text, CONV_W)


def test_elementwise_chain_into_a_reduction_becomes_one_reduce():
    from kaiyuan.graph.fusion_elementwise import fuse_reduction

    before = module(EW_ARGS, 'tensor<4x1xf32> {kyg.name = "y"}', """
        %axes = "kyg.Constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64> loc("axes")
        %e = "kyg.kaiyuan.Elementwise"(%x, %b) {expr = "mul(add($0,$1),$0)"} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32> loc("ew")
        %y = "kyg.ReduceMean"(%e, %axes) : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<4x1xf32> loc("mean")
        func.return %y : tensor<4x1xf32>""", opset=18)
    after = module(EW_ARGS, 'tensor<4x1xf32> {kyg.name = "y"}', """
        %y = "kyg.kaiyuan.Reduce"(%x, %b) {expr = "mul(add($0,$1),$0)", reduction = "ReduceMean", axes = [1 : i64], keepdims = 1 : i64} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x1xf32> loc("mean")
        func.return %y : tensor<4x1xf32>""", opset=18)
    out = check_pass(lambda m: _dce(fuse_reduction(m)), before, after)
    from kaiyuan.graph.executor import build_plan

    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    b = np.arange(8, dtype=np.float32)
    [y] = build_plan(out).run({"x": x, "b": b})
    np.testing.assert_allclose(y, ((x + b) * x).mean(-1, keepdims=True), rtol=1e-5, atol=1e-5)


def test_reduction_fusion_keeps_a_chain_used_elsewhere():
    from kaiyuan.graph.fusion_elementwise import fuse_reduction

    text = module(EW_ARGS, 'tensor<4x1xf32> {kyg.name = "y"}, tensor<4x8xf32> {kyg.name = "e"}', """
        %e = "kyg.Mul"(%x, %b) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32> loc("mul")
        %y = "kyg.ReduceMax"(%e) {axes = [1 : i64]} : (tensor<4x8xf32>) -> tensor<4x1xf32> loc("max")
        func.return %y, %e : tensor<4x1xf32>, tensor<4x8xf32>""")
    check_pass(lambda m: _dce(fuse_reduction(m)), text, text)


def test_rms_norm_and_mean_pooling_fuse_and_match_onnxruntime():
    import onnxruntime as ort

    nodes = [helper.make_node("Pow", ["x", "two"], ["sq"], name="pow"),
             helper.make_node("ReduceMean", ["sq", "axes"], ["ms"], name="ms"),
             helper.make_node("Add", ["ms", "eps"], ["mse"], name="eps_add"),
             helper.make_node("Sqrt", ["mse"], ["rms"], name="sqrt"),
             helper.make_node("Div", ["x", "rms"], ["n"], name="norm"),
             helper.make_node("Mul", ["n", "mask"], ["masked"], name="mask_mul"),
             helper.make_node("ReduceSum", ["masked", "one"], ["y"], name="pool", keepdims=0)]
    inits = [numpy_helper.from_array(np.array(2.0, np.float32), "two"),
             numpy_helper.from_array(np.array([-1], np.int64), "axes"),
             numpy_helper.from_array(np.array(1e-6, np.float32), "eps"),
             numpy_helper.from_array(np.array([1], np.int64), "one")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, ["b", "t", 16]),
                                       helper.make_tensor_value_info("mask", T.FLOAT, ["b", "t", 1])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["b", 16])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((3, 5, 16)).astype(np.float32),
             "mask": (rng.random((3, 5, 1)) < 0.6).astype(np.float32)}
    sess = ky.InferenceSession(model)
    [got] = sess.run(None, feeds)
    [want] = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    kinds = [s.op.op_type for s in sess.plan_for({"x": (3, 5, 16), "mask": (3, 5, 1)}).steps]
    assert kinds.count("Reduce") == 2 and "ReduceMean" not in kinds and "ReduceSum" not in kinds


# ------------------------------------------------------------------------------ weight packing
PACK_ARGS = '%x: tensor<2x3x8xf32> {kyg.name = "x"}, %r: tensor<2x3x70xf32> {kyg.name = "r"}'
PACK_OUT = ('tensor<2x3x70xf32> {kyg.name = "y"}, tensor<2x3x70xf32> {kyg.name = "z"}, '
            'tensor<2x3x16xf32> {kyg.name = "s"}')


def test_constant_weights_are_packed_once_into_panels():
    """A Linear's and a MatMul's constant W (K, N >= 64) become one packed weight (ceil(N/64), K, 64)
    shared by both, with out_features = N; a weight narrower than a panel stays as it is."""
    before = module(PACK_ARGS, PACK_OUT, """
        %w = "kyg.weight"() {name = "w"} : () -> tensor<8x70xf32>
        %b = "kyg.weight"() {name = "b"} : () -> tensor<70xf32>
        %v = "kyg.weight"() {name = "v"} : () -> tensor<8x16xf32>
        %y = "kyg.kaiyuan.Linear"(%x, %w, %b, %r) {activation = "gelu"} : (tensor<2x3x8xf32>, tensor<8x70xf32>, tensor<70xf32>, tensor<2x3x70xf32>) -> tensor<2x3x70xf32> loc("lin")
        %z = "kyg.MatMul"(%x, %w) : (tensor<2x3x8xf32>, tensor<8x70xf32>) -> tensor<2x3x70xf32> loc("mm")
        %s = "kyg.MatMul"(%x, %v) : (tensor<2x3x8xf32>, tensor<8x16xf32>) -> tensor<2x3x16xf32> loc("small")
        func.return %y, %z, %s : tensor<2x3x70xf32>, tensor<2x3x70xf32>, tensor<2x3x16xf32>""")
    after = module(PACK_ARGS, PACK_OUT, """
        %b = "kyg.weight"() {name = "b"} : () -> tensor<70xf32>
        %v = "kyg.weight"() {name = "v"} : () -> tensor<8x16xf32>
        %lin_packed_weight = "kyg.weight"() {name = "lin/packed_weight"} : () -> tensor<2x8x64xf32>
        %y = "kyg.kaiyuan.Linear"(%x, %lin_packed_weight, %b, %r) {activation = "gelu", out_features = 70 : i64} : (tensor<2x3x8xf32>, tensor<2x8x64xf32>, tensor<70xf32>, tensor<2x3x70xf32>) -> tensor<2x3x70xf32> loc("lin")
        %0 = "kyg.none"() : () -> none
        %z = "kyg.kaiyuan.Linear"(%x, %lin_packed_weight, %0) {out_features = 70 : i64} : (tensor<2x3x8xf32>, tensor<2x8x64xf32>, none) -> tensor<2x3x70xf32> loc("mm")
        %s = "kyg.MatMul"(%x, %v) : (tensor<2x3x8xf32>, tensor<8x16xf32>) -> tensor<2x3x16xf32> loc("small")
        func.return %y, %z, %s : tensor<2x3x70xf32>, tensor<2x3x70xf32>, tensor<2x3x16xf32>""")
    w = np.arange(560, dtype=np.float32).reshape(8, 70)
    out = check_pass(lambda m: _dce(pack_weights(m)), before, after,
                     {"w": w, "b": np.ones(70, np.float32), "v": np.ones((8, 16), np.float32)})
    packed = out.weights["lin/packed_weight"]
    np.testing.assert_array_equal(packed[0], w[:, :64])
    np.testing.assert_array_equal(packed[1, :, :6], w[:, 64:])
    assert not packed[1, :, 6:].any()                      # the last panel is zero-padded
    assert "w" not in out.weights                          # the unpacked weight is gone


def test_packed_model_matches_onnxruntime(rng=np.random.default_rng(1)):
    """The MLP (two Linears, N = 32 and 16) widened so both weights are packed (N = 96, 80)."""
    import onnxruntime as ort

    w1 = rng.standard_normal((16, 96)).astype(np.float32) * 0.3
    b1 = rng.standard_normal(96).astype(np.float32)
    w2 = rng.standard_normal((96, 80)).astype(np.float32) * 0.3
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["a"]), helper.make_node("MatMul", ["a", "w2"], ["y"])]
    inits = [numpy_helper.from_array(a, n) for a, n in [(w1, "w1"), (b1, "b1"), (w2, "w2")]]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", T.FLOAT, ["n", 5, 16])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["n", 5, 80])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((3, 5, 16)).astype(np.float32)
    sess = ky.InferenceSession(model)
    [got] = sess.run(None, {"x": x})
    [want] = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)   # fp32 sums of <= 96 products
    steps = sess.plan_for({"x": (3, 5, 16)}).steps
    assert [s.op.op_type for s in steps] == ["Linear", "Linear"]
    assert all(s.attrs["out_features"] in (96, 80) for s in steps)


SIB_ARGS = '%x: tensor<2x8xf32> {kyg.name = "x"}'
SIB_OUT = 'tensor<2x4xf32> {kyg.name = "q"}, tensor<2x6xf32> {kyg.name = "k"}, tensor<2x4xf32> {kyg.name = "r"}'


def test_sibling_linears_become_one_gemm_and_slices():
    """Linears on one x with the same activation and no residual share one GEMM (a missing bias
    is zeros); one with another activation stays apart."""
    before = module(SIB_ARGS, SIB_OUT, """
        %wq = "kyg.weight"() {name = "wq"} : () -> tensor<8x4xf32>
        %bq = "kyg.weight"() {name = "bq"} : () -> tensor<4xf32>
        %wk = "kyg.weight"() {name = "wk"} : () -> tensor<8x6xf32>
        %n = "kyg.none"() : () -> none
        %q = "kyg.kaiyuan.Linear"(%x, %wq, %bq) : (tensor<2x8xf32>, tensor<8x4xf32>, tensor<4xf32>) -> tensor<2x4xf32> loc("q")
        %k = "kyg.kaiyuan.Linear"(%x, %wk, %n) : (tensor<2x8xf32>, tensor<8x6xf32>, none) -> tensor<2x6xf32> loc("k")
        %r = "kyg.kaiyuan.Linear"(%x, %wq, %bq) {activation = "relu"} : (tensor<2x8xf32>, tensor<8x4xf32>, tensor<4xf32>) -> tensor<2x4xf32> loc("r")
        func.return %q, %k, %r : tensor<2x4xf32>, tensor<2x6xf32>, tensor<2x4xf32>""")
    after = module(SIB_ARGS, SIB_OUT, """
        %wq = "kyg.weight"() {name = "wq"} : () -> tensor<8x4xf32>
        %bq = "kyg.weight"() {name = "bq"} : () -> tensor<4xf32>
        %q_siblings_weight = "kyg.weight"() {name = "q+siblings/weight"} : () -> tensor<8x10xf32>
        %q_siblings_bias = "kyg.weight"() {name = "q+siblings/bias"} : () -> tensor<10xf32>
        %0 = "kyg.kaiyuan.Linear"(%x, %q_siblings_weight, %q_siblings_bias) : (tensor<2x8xf32>, tensor<8x10xf32>, tensor<10xf32>) -> tensor<2x10xf32> loc("q+siblings")
        %q_starts = "kyg.Constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64> loc("q/starts")
        %q_ends = "kyg.Constant"() {value = dense<4> : tensor<1xi64>} : () -> tensor<1xi64> loc("q/ends")
        %q_axes = "kyg.Constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64> loc("q/axes")
        %q = "kyg.Slice"(%0, %q_starts, %q_ends, %q_axes) : (tensor<2x10xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x4xf32> loc("q")
        %k_starts = "kyg.Constant"() {value = dense<4> : tensor<1xi64>} : () -> tensor<1xi64> loc("k/starts")
        %k_ends = "kyg.Constant"() {value = dense<10> : tensor<1xi64>} : () -> tensor<1xi64> loc("k/ends")
        %k_axes = "kyg.Constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64> loc("k/axes")
        %k = "kyg.Slice"(%0, %k_starts, %k_ends, %k_axes) : (tensor<2x10xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x6xf32> loc("k")
        %r = "kyg.kaiyuan.Linear"(%x, %wq, %bq) {activation = "relu"} : (tensor<2x8xf32>, tensor<8x4xf32>, tensor<4xf32>) -> tensor<2x4xf32> loc("r")
        func.return %q, %k, %r : tensor<2x4xf32>, tensor<2x6xf32>, tensor<2x4xf32>""")
    wq, bq, wk = (np.arange(32, dtype=np.float32).reshape(8, 4), np.arange(4, dtype=np.float32),
                  -np.arange(48, dtype=np.float32).reshape(8, 6))
    out = check_pass(lambda m: _dce(fuse_sibling_linears(m)), before, after, {"wq": wq, "bq": bq, "wk": wk})
    np.testing.assert_array_equal(out.weights["q+siblings/weight"], np.concatenate([wq, wk], 1))
    np.testing.assert_array_equal(out.weights["q+siblings/bias"], np.concatenate([bq, np.zeros(6, np.float32)]))


def test_qkv_projections_run_as_one_gemm_with_views(rng=np.random.default_rng(2)):
    """Q, K, V projections of one x, each reshaped to heads and transposed (a BERT layer's
    front): one Linear step; the slices, the reshapes of those strided slices and the
    transposes are all views (no copy steps), and the outputs match onnxruntime."""
    import onnxruntime as ort

    nodes, inits = [], []
    for name in "qkv":
        w = rng.standard_normal((16, 24)).astype(np.float32) * 0.3
        b = rng.standard_normal(24).astype(np.float32)
        inits += [numpy_helper.from_array(w, "w" + name), numpy_helper.from_array(b, "b" + name)]
        nodes += [helper.make_node("MatMul", ["x", "w" + name], ["m" + name]),
                  helper.make_node("Add", ["m" + name, "b" + name], ["a" + name]),
                  helper.make_node("Reshape", ["a" + name, "heads"], ["r" + name]),
                  helper.make_node("Transpose", ["r" + name], [name], perm=[0, 2, 1, 3])]
    inits.append(numpy_helper.from_array(np.array([2, 5, 3, 8], np.int64), "heads"))
    outs = [helper.make_tensor_value_info(n, T.FLOAT, [2, 3, 5, 8]) for n in "qkv"]
    g = helper.make_graph(nodes, "qkv", [helper.make_tensor_value_info("x", T.FLOAT, [2, 5, 16])], outs, inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((2, 5, 16)).astype(np.float32)
    sess = ky.InferenceSession(model)
    got = sess.run(None, {"x": x})
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert [s.op.op_type for s in sess.plan_for({"x": (2, 5, 16)}).steps] == ["Linear"]
