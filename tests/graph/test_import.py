"""ONNX import: the IR it writes for small models built with onnx.helper, and the errors for
models kaiyuan cannot read (each naming the file, or the node, op and opset)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from kaiyuan.graph import import_onnx
from kaiyuan.graph.errors import ModelError
from kaiyuan.ops.schema import OpDef
from kaiyuan.runtime.errors import UnsupportedError

from .irtext import module

pytestmark = pytest.mark.usefixtures("ref_registry")


def make_model(nodes, inputs, outputs, inits=(), opset=17, **kw):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **kw)


def vi(name, dtype=T.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, dtype, shape)


def small_model():
    w = np.arange(20, dtype=np.float32).reshape(4, 5) / 8
    nodes = [
        helper.make_node("Constant", [], ["lo"], name="lo_const", value_float=-1.5),
        helper.make_node("Constant", [], ["big"], name="big_const", value=numpy_helper.from_array(np.ones((3, 6), np.float32))),
        helper.make_node("Gemm", ["x", "W", ""], ["g"], name="gemm", alpha=0.5, transB=0),
        helper.make_node("Clip", ["g", "", "hi"], ["c"], name="clip"),
        helper.make_node("Pad", ["c", "pads"], ["p"], name="pad", mode="reflect"),
        helper.make_node("Clip", ["p", "lo"], ["y"], name="clip2"),
        helper.make_node("Concat", ["big", "big"], ["z"], axis=0),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
             numpy_helper.from_array(np.array([0, 0, 0, 0], np.int64), "pads")]
    return make_model(nodes, [vi("x", shape=["batch", 4])], [vi("y", shape=["batch", 5]), vi("z", shape=[6, 6])], inits)


SMALL_IR = module(
    '%x: tensor<?x4xf32> {kyg.name = "x", kyg.dims = ["batch", ""]}',
    'tensor<?x5xf32> {kyg.name = "y", kyg.dims = ["batch", ""]}, tensor<6x6xf32> {kyg.name = "z"}',
    """
    %0 = "kyg.none"() : () -> none
    %W = "kyg.weight"() {name = "W"} : () -> tensor<4x5xf32>
    %g = "kyg.Gemm"(%x, %W) {alpha = 5.000000e-01 : f32, transB = 0 : i64} : (tensor<?x4xf32>, tensor<4x5xf32>) -> tensor<?x5xf32> loc("gemm")
    %hi = "kyg.Constant"() {value = dense<6.000000e+00> : tensor<f32>} : () -> tensor<f32> loc("hi")
    %c = "kyg.Clip"(%g, %0, %hi) : (tensor<?x5xf32>, none, tensor<f32>) -> tensor<?x5xf32> loc("clip")
    %pads = "kyg.Constant"() {value = dense<0> : tensor<4xi64>} : () -> tensor<4xi64> loc("pads")
    %p = "kyg.Pad"(%c, %pads) {mode = "reflect"} : (tensor<?x5xf32>, tensor<4xi64>) -> tensor<?x5xf32> loc("pad")
    %lo = "kyg.Constant"() {value = dense<-1.500000e+00> : tensor<f32>} : () -> tensor<f32> loc("lo_const")
    %y = "kyg.Clip"(%p, %lo) : (tensor<?x5xf32>, tensor<f32>) -> tensor<?x5xf32> loc("clip2")
    %big = "kyg.weight"() {name = "big"} : () -> tensor<3x6xf32>
    %z = "kyg.Concat"(%big, %big) {axis = 0 : i64} : (tensor<3x6xf32>, tensor<3x6xf32>) -> tensor<6x6xf32> loc("Concat_6")
    func.return %y, %z : tensor<?x5xf32>, tensor<6x6xf32>
    """)


def test_import_writes_ops_constants_weights_and_absent_inputs():
    model = import_onnx(small_model())
    assert model.text() == SMALL_IR
    assert sorted(model.weights) == ["W", "big"]
    np.testing.assert_array_equal(model.weights["big"], np.ones((3, 6), np.float32))
    assert [(v.name, v.shape) for v in model.inputs] == [("x", ("batch", 4))]
    assert [(v.name, v.shape) for v in model.outputs] == [("y", ("batch", 5)), ("z", (6, 6))]


def test_import_reads_files(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(small_model(), path)
    assert import_onnx(path).text() == SMALL_IR
    assert import_onnx(str(path)).text() == SMALL_IR


def test_nodes_are_put_in_topological_order():
    nodes = [helper.make_node("Neg", ["a"], ["y"], name="second"), helper.make_node("Relu", ["x"], ["a"], name="first")]
    model = import_onnx(make_model(nodes, [vi("x", shape=[2])], [vi("y", shape=[2])]))
    assert [op.name for op in model.block.ops] == ["kyg.Relu", "kyg.Neg", "func.return"]


def test_an_initializer_that_is_also_an_input_is_a_constant():
    nodes = [helper.make_node("Add", ["x", "b"], ["y"], name="add")]
    model = import_onnx(make_model(nodes, [vi("x", shape=[2]), vi("b", shape=[2])], [vi("y", shape=[2])],
                                   [numpy_helper.from_array(np.ones(2, np.float32), "b")]))
    assert [v.name for v in model.inputs] == ["x"]


def test_trailing_absent_outputs_are_left_out_and_middle_ones_kept():
    nodes = [helper.make_node("LayerNormalization", ["x", "s"], ["y", "", ""], name="ln", axis=-1),
             helper.make_node("Split", ["x"], ["", "b"], name="split", axis=1, num_outputs=2)]
    model = import_onnx(make_model(nodes, [vi("x", shape=[2, 4]), vi("s", shape=[4])], [vi("y", shape=[2, 4]),
                                                                                          vi("b", shape=[2, 2])], opset=18))
    ln, split = [op for op in model.block.ops if op.name != "func.return"]
    assert len(ln.results) == 1 and len(split.results) == 2
    assert model.returned() == [ln.results[0], split.results[1]]


def test_kaiyuan_domain_nodes_become_kyg_kaiyuan_ops():
    nodes = [helper.make_node("FusedTest", ["x"], ["y"], name="f", domain="kaiyuan", alpha=2.0)]
    model = make_model(nodes, [vi("x", shape=[3])], [vi("y", shape=[3])])
    model.opset_import.append(helper.make_opsetid("kaiyuan", 1))
    ops = list(import_onnx(model).block.ops)
    assert ops[0].name == "kyg.kaiyuan.FusedTest"


def test_model_local_functions_are_inlined():
    fn = helper.make_function("local", "Twice", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])],
                              [helper.make_opsetid("", 17)])
    nodes = [helper.make_node("Twice", ["x"], ["y"], name="call", domain="local")]
    model = make_model(nodes, [vi("x", shape=[3])], [vi("y", shape=[3])], functions=[fn])
    model.opset_import.append(helper.make_opsetid("local", 1))
    assert [op.name for op in import_onnx(model).block.ops] == ["kyg.Add", "func.return"]


# ----------------------------------------------------------------------------- load-time errors


def test_an_unknown_op_names_the_node_the_op_and_the_opset():
    nodes = [helper.make_node("Frobnicate", ["x"], ["y"], name="frob_1")]
    with pytest.raises(UnsupportedError, match=r"node 'frob_1': operator ai.onnx.Frobnicate \(opset 17\) is not supported"):
        import_onnx(make_model(nodes, [vi("x", shape=[3])], [vi("y", shape=[3])]))


def test_an_op_not_supported_at_the_models_opset_says_which_opsets_are():
    nodes = [helper.make_node("Gelu", ["x"], ["y"], name="gelu")]
    with pytest.raises(UnsupportedError, match=r"node 'gelu': ai.onnx.Gelu at opset 17 is not supported") as e:
        import_onnx(make_model(nodes, [vi("x", shape=[3])], [vi("y", shape=[3])]))
    assert "20-latest" in e.value.hint


def test_an_unsupported_attribute_names_the_node():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r", slope=2)]
    with pytest.raises(UnsupportedError, match=r"node 'r': Relu attribute\(s\) \['slope'\] are not supported"):
        import_onnx(make_model(nodes, [vi("x", shape=[3])], [vi("y", shape=[3])]))


def test_too_many_inputs_name_the_node():
    nodes = [helper.make_node("Relu", ["x", "x"], ["y"], name="r2")]
    with pytest.raises(UnsupportedError, match=r"node 'r2': Relu with 2 inputs is not supported"):
        import_onnx(make_model(nodes, [vi("x", shape=[3])], [vi("y", shape=[3])]))


def test_an_input_dtype_the_opdef_refuses_fails_at_load(ref_registry):
    ref_registry[("", "Relu")] = [OpDef("Relu", infer=lambda t, a, c: [t[0]], run=None, dtypes=("float32",))]
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu_i")]
    with pytest.raises(UnsupportedError, match=r"node 'relu_i': Relu on int32 inputs is not supported"):
        import_onnx(make_model(nodes, [vi("x", T.INT32, [3])], [vi("y", T.INT32, [3])]))


def test_an_opdef_refusing_a_static_node_fails_at_load(ref_registry):
    def infer(types, attrs, consts):
        raise UnsupportedError(f"LeakyRelu with alpha={attrs['alpha']} is not supported")

    ref_registry[("", "LeakyRelu")] = [OpDef("LeakyRelu", infer=infer, run=None, attrs={"alpha": 0.01})]
    nodes = [helper.make_node("LeakyRelu", ["x"], ["y"], name="leaky", alpha=3.0)]
    with pytest.raises(UnsupportedError, match=r"node 'leaky' \(LeakyRelu\): LeakyRelu with alpha=3.0 is not supported"):
        import_onnx(make_model(nodes, [vi("x", shape=[3])], [vi("y", shape=[3])]))
    dynamic = make_model(nodes, [vi("x", shape=["n"])], [vi("y", shape=["n"])])
    assert import_onnx(dynamic).inputs[0].shape == ("n",)  # checked by specialise once shapes are known


@pytest.mark.parametrize("opset", [12, 22])
def test_opsets_outside_13_to_21_are_unsupported(opset):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    with pytest.raises(UnsupportedError, match=f"opset {opset} is not supported.*13-21"):
        import_onnx(make_model(nodes, [vi("x", shape=[3])], [vi("y", shape=[3])], opset=opset))


def test_control_flow_and_subgraph_attributes_name_the_node():
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "b", [], [vi("o", shape=[3])])
    nodes = [helper.make_node("If", ["c"], ["y"], name="branch_node", then_branch=branch, else_branch=branch)]
    with pytest.raises(UnsupportedError, match=r"node 'branch_node': If has a subgraph"):
        import_onnx(make_model(nodes, [vi("c", T.BOOL, []), vi("x", shape=[3])], [vi("y", shape=[3])]))
    nodes = [helper.make_node("Custom", ["x"], ["y"], name="custom_sub", body=branch)]
    with pytest.raises(UnsupportedError, match=r"node 'custom_sub': Custom has a subgraph"):
        import_onnx(make_model(nodes, [vi("x", shape=[3])], [vi("y", shape=[3])]))


def test_an_unsupported_input_dtype_names_the_input():
    nodes = [helper.make_node("Identity", ["s"], ["y"], name="i")]
    with pytest.raises(UnsupportedError, match=r"graph input 's': element type STRING is not supported"):
        import_onnx(make_model(nodes, [vi("s", T.STRING, [2])], [vi("y", T.STRING, [2])]))


def test_a_value_nobody_produces_names_the_node():
    nodes = [helper.make_node("Relu", ["ghost"], ["y"], name="reader")]
    with pytest.raises(ModelError, match=r"node 'reader' \(Relu\) reads 'ghost'"):
        import_onnx(make_model(nodes, [vi("x", shape=[3])], [vi("y", shape=[3])]))


def test_files_that_are_not_onnx_name_the_file(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n" * 10)
    with pytest.raises(ModelError, match="notes.onnx"):
        import_onnx(text)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty.onnx: not an ONNX model"):
        import_onnx(empty)
    with pytest.raises(ModelError, match="missing.onnx: no such model file"):
        import_onnx(tmp_path / "missing.onnx")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_files_are_refused_naming_the_file(tmp_path, keep):
    data = small_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelError, match="cut.onnx"):
        import_onnx(path)
    assert ModelError.code == "KY-E700"
