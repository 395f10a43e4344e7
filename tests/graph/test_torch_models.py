"""Real exported models: PyTorch modules exported to ONNX inside the test (legacy exporter,
opset 17), imported, specialised and run through the default passes. The IR is then run op by op
with onnx's reference evaluator and compared with onnxruntime on the original file, so import,
inference, folding and simplification are checked to keep each model's values (fp32; tolerance
1e-5 relative and absolute: the reference evaluator and onnxruntime order sums differently)."""

import math

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from kaiyuan.graph import import_onnx, run_passes, specialise  # noqa: E402
from kaiyuan.graph.attributes import is_static  # noqa: E402
from kaiyuan.graph.dialect import op_type  # noqa: E402

from .irtext import run_reference  # noqa: E402

pytestmark = pytest.mark.usefixtures("ref_registry")


class Block(torch.nn.Module):
    """A GPT-style decoder block written with the shape arithmetic exporters turn into
    Shape → Gather → Concat → Reshape subgraphs."""

    def __init__(self, d=16, heads=2):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.qkv, self.proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.fc1, self.fc2 = torch.nn.Linear(d, 2 * d), torch.nn.Linear(2 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, d)
        x = x + self.proj(y)
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))


def small_cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 3 * 3, 10))


class ResidualBlock(torch.nn.Module):
    """A ResNet basic block after a stem: conv-BN-ReLU, conv-BN, + identity, ReLU; then a head.
    The BN statistics are random so that folding them into the convs changes the weights."""

    def __init__(self, c=8):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, c, 3, padding=1)
        self.c1, self.c2 = (torch.nn.Conv2d(c, c, 3, padding=1, bias=False) for _ in range(2))
        self.b1, self.b2 = torch.nn.BatchNorm2d(c), torch.nn.BatchNorm2d(c)
        for bn in (self.b1, self.b2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
        self.head = torch.nn.Linear(c, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        y = torch.relu(self.b1(self.c1(x)))
        y = torch.relu(self.b2(self.c2(y)) + x)
        return self.head(y.mean((2, 3)))


def export(module, example, dynamic_axes, path):
    torch.manual_seed(0)
    with torch.no_grad():
        torch.onnx.export(module.eval(), (example,), str(path), dynamo=False, opset_version=17, input_names=["x"],
                          output_names=["y"], dynamic_axes=dynamic_axes)
    return path


CASES = {
    # name: (module, export shape, dynamic axes, run shape, ops removed by the passes at least)
    "decoder_block": (Block, (1, 7, 16), {"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}}, (2, 5, 16), 2),
    "cnn": (small_cnn, (1, 3, 16, 16), {"x": {0: "batch"}, "y": {0: "batch"}}, (3, 3, 16, 16), 0),
}


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("name", list(CASES))
def test_exported_models_keep_their_values_through_import_specialise_and_passes(name, tmp_path):
    make, example_shape, axes, run_shape, removed = CASES[name]
    torch.manual_seed(0)
    path = export(make(), torch.randn(*example_shape), axes, tmp_path / f"{name}.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    model = import_onnx(path)
    assert [(v.name, list(v.shape)) for v in model.inputs] == [(i.name, i.shape) for i in sess.get_inputs()]
    assert [v.name for v in model.outputs] == [o.name for o in sess.get_outputs()]

    x = np.random.default_rng(1).standard_normal(run_shape).astype(np.float32)
    want = sess.run(None, {"x": x})[0]
    spec = specialise(model, {"x": run_shape})
    assert all(is_static(r.type) for op in spec.block.ops for r in op.results)
    dump = []
    final = run_passes(spec, dump=dump)
    assert [n for n, _ in dump] == ["fold", "simplify", "cse", "dce"]
    assert final.outputs[0].shape == want.shape
    for m in (spec, final):
        np.testing.assert_allclose(run_reference(m, {"x": x})[0], want, rtol=1e-5, atol=1e-5)

    kinds = [op_type(op)[1] for op in final.block.ops]
    for gone in ("Shape", "Gather", "Concat", "Unsqueeze", "Identity", "ConstantOfShape"):
        assert gone not in kinds, f"{gone} left after the passes: {kinds}"
    assert len(kinds) <= len(list(spec.block.ops)) - removed
