"""The graph engine on kaiyuan's real OpDefs (not the stand-in registry the other tests use):
the exported models of test_torch_models import, specialise with the operator library's own
shape functions, and keep their values through the passes. Skipped while the operator modules
do not register every op a model needs."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from kaiyuan.graph import import_onnx, run_passes, specialise
from kaiyuan.ops import schema

from .irtext import run_reference
from .test_torch_models import CASES, export

torch = pytest.importorskip("torch")


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("name", list(CASES))
def test_exported_models_specialise_with_the_real_opdefs(name, tmp_path, real_registry):
    make, example_shape, axes, run_shape, _ = CASES[name]
    torch.manual_seed(0)
    path = export(make(), torch.randn(*example_shape), axes, tmp_path / f"{name}.onnx")
    needed = {n.op_type for n in onnx.load(path).graph.node} - {"Constant"}
    missing = sorted(op for op in needed if ("", op) not in real_registry)
    if missing:
        pytest.skip(f"OpDefs not registered yet: {', '.join(missing)}")
    model = import_onnx(path)
    final = run_passes(specialise(model, {"x": run_shape}))
    x = np.random.default_rng(1).standard_normal(run_shape).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert final.outputs[0].shape == want.shape and final.outputs[0].dtype == want.dtype
    np.testing.assert_allclose(run_reference(final, {"x": x})[0], want, rtol=1e-5, atol=1e-5)
    assert schema.lookup("MatMul", 17) in real_registry[("", "MatMul")]
