"""specialise: every type static from the OpDefs, shape subgraphs folded on the way, and input
shapes checked against the declared ones."""

import numpy as np
import pytest

from kaiyuan.graph import GraphModel, specialise
from kaiyuan.ops.schema import OpDef
from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

from .irtext import module

pytestmark = pytest.mark.usefixtures("ref_registry")

DYNAMIC = module(
    '%x: tensor<?x?xf32> {kyg.name = "x", kyg.dims = ["batch", "seq"]}, %m: tensor<?x4xi64> {kyg.name = "m", kyg.dims = ["batch", ""]}',
    'tensor<?x?xf32> {kyg.name = "y", kyg.dims = ["seq", "batch"]}, tensor<?x4xi64> {kyg.name = "m2", kyg.dims = ["batch", ""]}',
    """
    %s = "kyg.Shape"(%x) : (tensor<?x?xf32>) -> tensor<2xi64> loc("shape")
    %i = "kyg.Constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64> loc("i")
    %b = "kyg.Gather"(%s, %i) {axis = 0 : i64} : (tensor<2xi64>, tensor<i64>) -> tensor<i64> loc("gather")
    %a = "kyg.Constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64> loc("a")
    %b1 = "kyg.Unsqueeze"(%b, %a) : (tensor<i64>, tensor<1xi64>) -> tensor<1xi64> loc("unsqueeze")
    %minus = "kyg.Constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64> loc("minus")
    %ns = "kyg.Concat"(%minus, %b1) {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>) -> tensor<2xi64> loc("concat")
    %r = "kyg.Reshape"(%x, %ns) : (tensor<?x?xf32>, tensor<2xi64>) -> tensor<?x?xf32> loc("reshape")
    %y = "kyg.Relu"(%r) : (tensor<?x?xf32>) -> tensor<?x?xf32> loc("relu")
    %m2 = "kyg.Add"(%m, %m) : (tensor<?x4xi64>, tensor<?x4xi64>) -> tensor<?x4xi64> loc("add")
    func.return %y, %m2 : tensor<?x?xf32>, tensor<?x4xi64>
    """)

SPECIALISED = module(
    '%x: tensor<2x3xf32> {kyg.name = "x"}, %m: tensor<2x4xi64> {kyg.name = "m"}',
    'tensor<3x2xf32> {kyg.name = "y"}, tensor<2x4xi64> {kyg.name = "m2"}',
    """
    %ns = "kyg.Constant"() {value = dense<[-1, 2]> : tensor<2xi64>} : () -> tensor<2xi64> loc("concat")
    %r = "kyg.Reshape"(%x, %ns) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<3x2xf32> loc("reshape")
    %y = "kyg.Relu"(%r) : (tensor<3x2xf32>) -> tensor<3x2xf32> loc("relu")
    %m2 = "kyg.Add"(%m, %m) : (tensor<2x4xi64>, tensor<2x4xi64>) -> tensor<2x4xi64> loc("add")
    func.return %y, %m2 : tensor<3x2xf32>, tensor<2x4xi64>
    """)


def test_specialise_makes_every_type_static_and_folds_shape_arithmetic():
    model = GraphModel.from_text(DYNAMIC)
    out = specialise(model, {"x": (2, 3), "m": np.zeros((2, 4), np.int64)})
    assert out.text() == SPECIALISED
    assert model.text() == DYNAMIC
    assert [(v.name, v.shape) for v in out.outputs] == [("y", (3, 2)), ("m2", (2, 4))]
    assert [(v.name, v.shape) for v in model.inputs] == [("x", ("batch", "seq")), ("m", ("batch", 4))]


def test_a_static_model_needs_no_shapes():
    text = SPECIALISED
    assert specialise(GraphModel.from_text(text)).text() == text


@pytest.mark.parametrize("shapes, message", [
    ({"x": (2, 3), "m": (2, 4), "z": (1,)}, r"no graph input named 'z'"),
    ({"x": (2, 3)}, r"graph input 'm' has dynamic shape \(batch, 4\): give its shape"),
    ({"x": (2, 3, 1), "m": (2, 4)}, r"graph input 'x' has rank 2 \(batch, seq\), got shape \(2, 3, 1\)"),
    ({"x": (2, 3), "m": (2, 5)}, r"graph input 'm': dim 1 must be 4, got 5"),
    ({"x": (2, 3), "m": (3, 4)}, r"graph input 'm': dim 'batch' is 3, but it is 2 in input 'x'"),
    ({"x": (2, 3), "m": np.zeros((2, 4), np.int32)}, r"graph input 'm' is int64, got int32"),
    ({"x": (2, -3), "m": (2, 4)}, r"negative dim"),
    ({"x": "2x3", "m": (2, 4)}, r"not a tuple of ints"),
])
def test_input_shapes_are_checked_against_the_declared_ones(shapes, message):
    with pytest.raises(ArgumentError, match=message):
        specialise(GraphModel.from_text(DYNAMIC), shapes)


def test_a_value_input_computed_at_run_time_names_the_node():
    text = module('%x: tensor<6xf32> {kyg.name = "x"}, %s: tensor<2xi64> {kyg.name = "s"}',
                  'tensor<?x?xf32> {kyg.name = "y"}', """
        %y = "kyg.Reshape"(%x, %s) : (tensor<6xf32>, tensor<2xi64>) -> tensor<?x?xf32> loc("dyn_reshape")
        func.return %y : tensor<?x?xf32>""")
    with pytest.raises(UnsupportedError, match=r"node 'dyn_reshape' \(Reshape\): input 1 must be known when the model "
                                               r"is planned.*by a graph input"):
        specialise(GraphModel.from_text(text))


def test_errors_from_an_opdefs_infer_name_the_node(ref_registry):
    def bad_infer(types, attrs, consts):
        raise ArgumentError("shapes do not fit", hint="fix them")

    ref_registry[("", "Relu")] = [OpDef("Relu", infer=bad_infer, run=None)]
    with pytest.raises(ArgumentError, match=r"node 'relu' \(Relu\): shapes do not fit") as e:
        specialise(GraphModel.from_text(DYNAMIC), {"x": (2, 3), "m": (2, 4)})
    assert e.value.hint == "fix them"


def test_an_input_dtype_the_opdef_refuses_names_the_node(ref_registry):
    ref_registry[("", "Add")] = [OpDef("Add", infer=lambda t, a, c: [t[0]], run=None, inputs=(2, 2), dtypes=("float32",))]
    with pytest.raises(UnsupportedError, match=r"node 'add' \(Add\): Add on int64 inputs is not supported"):
        specialise(GraphModel.from_text(DYNAMIC), {"x": (2, 3), "m": (2, 4)})


def test_an_opdef_inferring_too_few_outputs_is_reported(ref_registry):
    ref_registry[("", "Relu")] = [OpDef("Relu", infer=lambda t, a, c: [], run=None)]
    with pytest.raises(UnsupportedError, match=r"node 'relu' \(Relu\): the OpDef infers 0 outputs, the node has 1"):
        specialise(GraphModel.from_text(DYNAMIC), {"x": (2, 3), "m": (2, 4)})
