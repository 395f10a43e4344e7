"""The kyg dialect: text round trips, ops made on demand from the OpDef registry, verification
against OpDefs, attribute conversion, and parse/verify errors that name the line or the node."""

import ml_dtypes
import numpy as np
import pytest
from xdsl.dialects.builtin import NoneType, TensorType, f32

from kaiyuan.graph import GraphModel, attrs, make_op, op_type
from kaiyuan.graph.attributes import dense, dense_array, from_attr, tensor_type, to_attr, type_shape
from kaiyuan.graph.dialect import make_constant, node_name
from kaiyuan.runtime.errors import IRParseError, IRVerifyError, UnsupportedError

from .irtext import module

pytestmark = pytest.mark.usefixtures("ref_registry")

FULL = module(
    '%x: tensor<?x4xf32> {kyg.name = "x", kyg.dims = ["batch", ""]}, %m: tensor<4xi1> {kyg.name = "mask"}',
    'tensor<?x4xf32> {kyg.name = "y", kyg.dims = ["batch", ""]}, tensor<2x3xbf16> {kyg.name = "w"}',
    """
    %0 = "kyg.none"() : () -> none
    %w = "kyg.weight"() {name = "fc.weight"} : () -> tensor<2x3xbf16>
    %c = "kyg.Constant"() {value = dense<[1, -1]> : tensor<2xi64>} : () -> tensor<2xi64> loc("shape_const")
    %inf = "kyg.Constant"() {value = dense<"0x0000807F000080FF0000C07F"> : tensor<3xf32>} : () -> tensor<3xf32>
    %u = "kyg.Constant"() {value = dense<[255, 0]> : tensor<2xui8>} : () -> tensor<2xui8>
    %b = "kyg.Constant"() {value = dense<[true, false]> : tensor<2xi1>} : () -> tensor<2xi1>
    %r = "kyg.Reshape"(%x, %c) : (tensor<?x4xf32>, tensor<2xi64>) -> tensor<?x4xf32> loc("reshape/0")
    %cl = "kyg.Clip"(%r, %0, %inf) : (tensor<?x4xf32>, none, tensor<3xf32>) -> tensor<?x4xf32> loc("clip")
    %t = "kyg.Transpose"(%cl) {perm = [1 : i64, 0 : i64]} : (tensor<?x4xf32>) -> tensor<4x?xf32> loc("t")
    %y = "kyg.LeakyRelu"(%cl) {alpha = 1.000000e-01 : f32} : (tensor<?x4xf32>) -> tensor<?x4xf32> loc("lrelu")
    %f = "kyg.kaiyuan.FusedTest"(%y, %t) {alpha = 2.500000e+00 : f32} : (tensor<?x4xf32>, tensor<4x?xf32>) -> tensor<?x4xf32> loc("fused")
    %p = "kyg.Pad"(%f, %c) {mode = "reflect"} : (tensor<?x4xf32>, tensor<2xi64>) -> tensor<?x4xf32> loc("pad")
    func.return %p, %w : tensor<?x4xf32>, tensor<2x3xbf16>
    """)

WEIGHTS = {"fc.weight": np.ones((2, 3), ml_dtypes.bfloat16)}


def test_round_trip_keeps_the_text_exactly():
    model = GraphModel.from_text(FULL, WEIGHTS)
    assert model.text() == FULL
    assert GraphModel.from_text(model.text(), WEIGHTS).text() == FULL
    assert model.copy().text() == FULL


def test_inputs_and_outputs_keep_names_dtypes_and_symbolic_dims():
    model = GraphModel.from_text(FULL, WEIGHTS)
    assert [(v.name, v.dtype, v.shape) for v in model.inputs] == [
        ("x", np.float32, ("batch", 4)), ("mask", np.bool_, (4,))]
    assert [(v.name, v.dtype, v.shape) for v in model.outputs] == [
        ("y", np.float32, ("batch", 4)), ("w", ml_dtypes.bfloat16, (2, 3))]
    assert model.opset == 17


def test_op_type_attrs_and_node_names():
    model = GraphModel.from_text(FULL, WEIGHTS)
    ops = {node_name(op): op for op in model.block.ops}
    assert op_type(ops["fused"]) == ("kaiyuan", "FusedTest")
    assert op_type(ops["t"]) == ("", "Transpose")
    assert op_type(ops["kyg.weight"]) == ("kyg", "weight")
    assert op_type(ops["shape_const"]) == ("", "Constant")
    assert attrs(ops["t"]) == {"perm": [1, 0]}
    assert attrs(ops["pad"]) == {"mode": "reflect"}
    assert attrs(ops["lrelu"])["alpha"] == pytest.approx(0.1) and isinstance(attrs(ops["lrelu"])["alpha"], float)
    value = attrs(ops["shape_const"])["value"]
    assert value.dtype == np.int64 and value.tolist() == [1, -1]
    inf = [op for op in model.block.ops if op.results and type_shape(op.results[0].type) == (3,)][0]
    np.testing.assert_array_equal(attrs(inf)["value"], np.array([np.inf, -np.inf, np.nan], np.float32))


def test_make_op_builds_a_verifiable_op():
    c = make_constant(np.array([2, 3], np.int64), "c")
    op = make_op("Transpose", [c.results[0]], [tensor_type(np.int64, (2,))], {"perm": [0]}, "my_node")
    assert op.name == "kyg.Transpose" and node_name(op) == "my_node" and attrs(op) == {"perm": [0]}
    fused = make_op("FusedTest", [c.results[0]], [tensor_type(np.int64, (2,))], {}, "f", domain="kaiyuan")
    assert fused.name == "kyg.kaiyuan.FusedTest" and op_type(fused) == ("kaiyuan", "FusedTest")


@pytest.mark.parametrize("array", [
    np.array([1.5, -0.1, 3e-38], np.float32), np.array([[0.1]], np.float64), np.array([1e-4, 65504], np.float16),
    np.array([0.1, -3], ml_dtypes.bfloat16), np.array([-128, 127], np.int8), np.array([2**63 - 1], np.int64),
    np.array([65535], np.uint16), np.array([True, False, True]), np.array(7, np.int32), np.zeros((0, 3), np.float32),
    np.array([np.nan, -np.inf], np.float16)])
def test_dense_attributes_hold_values_exactly_through_text(array):
    a = dense(array)
    back = dense_array(a)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    text = module("", "tensor<1xi1> {kyg.name = \"y\"}", f"""
        %c = "kyg.Constant"() {{value = {_attr_text(a)}}} : () -> {_attr_text(a.get_type())}
        %y = "kyg.Constant"() {{value = dense<true> : tensor<1xi1>}} : () -> tensor<1xi1>
        func.return %y : tensor<1xi1>""")
    model = GraphModel.from_text(text)
    assert model.text() == text
    np.testing.assert_array_equal(attrs(next(iter(model.block.ops)))["value"], array)


def _attr_text(attr) -> str:
    import io

    from kaiyuan.graph.text import _Printer

    out = io.StringIO()
    _Printer(stream=out).print_attribute(attr)
    return out.getvalue()


def test_python_values_map_to_onnx_attribute_types():
    assert str(to_attr(3)) == str(to_attr(np.int64(3))) and from_attr(to_attr(True)) == 1
    assert to_attr(0.5).type == f32 and from_attr(to_attr(0.5)) == 0.5
    assert from_attr(to_attr(b"abc")) == "abc" and from_attr(to_attr([1, 2])) == [1, 2]
    assert from_attr(to_attr([])) == [] and from_attr(to_attr(["a", "b"])) == ["a", "b"]
    with pytest.raises(UnsupportedError, match="not UTF-8"):
        to_attr(b"\xff\xfe")
    with pytest.raises(UnsupportedError, match="dtype complex64"):
        dense(np.zeros(2, np.complex64))
    assert isinstance(tensor_type(np.float32, None), type(tensor_type(np.float32, None)))
    assert tensor_type(np.float32, ("b", None, 3)) == TensorType(f32, [-(2**63), -(2**63), 3])
    assert not isinstance(tensor_type(np.float32, (1,)), NoneType)


# --------------------------------------------------------------------------------- errors

HEAD = module('%x: tensor<2x3xf32> {kyg.name = "x"}', 'tensor<2x3xf32> {kyg.name = "y"}', "BODY")


def _bad(body: str) -> str:
    return HEAD.replace("    BODY", body)


def test_an_unregistered_op_is_a_parse_error_naming_its_line():
    text = _bad('    %y = "kyg.NoSuchOp"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>\n    func.return %y : tensor<2x3xf32>')
    with pytest.raises(IRParseError, match=r"(?s)<kyg>:3:.*kyg.NoSuchOp is not registered"):
        GraphModel.from_text(text)


def test_a_syntax_error_names_its_line():
    text = _bad('    %y = "kyg.Relu"(%x) : (tensor<2x3xf32>) -> \n    func.return %y : tensor<2x3xf32>')
    with pytest.raises(IRParseError, match=r"<kyg>:4:"):
        GraphModel.from_text(text)


def test_an_undefined_value_names_the_line_that_uses_it():
    text = _bad('    %y = "kyg.Relu"(%nope) : (tensor<2x3xf32>) -> tensor<2x3xf32>\n    func.return %y : tensor<2x3xf32>')
    with pytest.raises(IRParseError, match=r"<kyg>:3: value %nope is used but never defined"):
        GraphModel.from_text(text)


@pytest.mark.parametrize("op, message", [
    ('"kyg.Relu"(%x, %x) : (tensor<2x3xf32>, tensor<2x3xf32>)', r"2 operands; Relu takes 1"),
    ('"kyg.Relu"(%x) {alpha = 1 : i64} : (tensor<2x3xf32>)', r"attribute\(s\) \['alpha'\] are not supported"),
    ('"kyg.Concat"(%x) : (tensor<2x3xf32>)', r"Concat needs attribute 'axis'"),
    ('"kyg.Add"(%x, %n) : (tensor<2x3xf32>, none)', r"operand 1 is required but is none"),
])
def test_verification_checks_the_opdef_and_names_the_node(op, message):
    text = _bad(f'    %n = "kyg.none"() : () -> none\n    %y = {op} -> tensor<2x3xf32> loc("bad_node")\n'
                f"    func.return %y : tensor<2x3xf32>")
    with pytest.raises(IRVerifyError, match=message) as e:
        GraphModel.from_text(text)
    assert e.value.loc == "bad_node"


def test_an_op_type_unknown_at_the_module_opset_fails_verification():
    text = _bad('    %y = "kyg.Gelu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32> loc("g")\n'
                '    func.return %y : tensor<2x3xf32>')  # Gelu is opset 20
    with pytest.raises(IRVerifyError, match=r"Gelu at opset 17 is not supported"):
        GraphModel.from_text(text)
    assert GraphModel.from_text(text.replace("kyg.opset = 17", "kyg.opset = 20")).opset == 20


def test_a_constant_whose_type_differs_from_its_value_fails_verification():
    text = _bad('    %y = "kyg.Constant"() {value = dense<1.0> : tensor<2x3xf32>} : () -> tensor<3x2xf32>\n'
                "    func.return %x : tensor<2x3xf32>")
    with pytest.raises(IRVerifyError, match="value type"):
        GraphModel.from_text(text)


def test_weights_must_be_given_with_their_types():
    text = _bad('    %w = "kyg.weight"() {name = "w"} : () -> tensor<2x3xf32>\n    func.return %w : tensor<2x3xf32>')
    with pytest.raises(IRVerifyError, match="no weight named 'w'"):
        GraphModel.from_text(text)
    with pytest.raises(IRVerifyError, match=r"weight 'w' is float64\[2, 3\]"):
        GraphModel.from_text(text, {"w": np.zeros((2, 3))})
    assert GraphModel.from_text(text, {"w": np.zeros((2, 3), np.float32)}).weights["w"].shape == (2, 3)


def test_a_module_without_opset_or_main_is_refused():
    with pytest.raises(IRVerifyError, match="kyg.opset"):
        GraphModel.from_text(HEAD.replace(", kyg.opset = 17 : i64", "").replace("    BODY", "    func.return %x : tensor<2x3xf32>"))
    with pytest.raises(IRVerifyError, match="kyg version 9"):
        GraphModel.from_text(HEAD.replace('"0.1"', '"9"').replace("    BODY", "    func.return %x : tensor<2x3xf32>"))
    with pytest.raises(IRVerifyError, match="no func.func @main"):
        GraphModel.from_text(HEAD.replace("@main", "@other").replace("    BODY", "    func.return %x : tensor<2x3xf32>"))
