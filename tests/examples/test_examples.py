"""Every program in examples/ runs and checks itself against numpy (each `run()` asserts)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import kaiyuan as ky

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))

import layer_norm  # noqa: E402
import matmul  # noqa: E402
import softmax  # noqa: E402
import vector_add  # noqa: E402

DEVICES = [d.name for d in ky.devices() if d.available and d.name in ("cpu", "interp")]

# Small, ragged sizes: every example's masks and loops get exercised on every device.
CASES = [(vector_add, (3001,)), (softmax, (7, 130)), (layer_norm, (5, 1100)), (matmul, (33, 47, 70))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("module,args", CASES, ids=[m.__name__ for m, _ in CASES])
def test_example_matches_numpy(device, module, args):
    with ky.device(device):
        result = module.run(*args)
    assert result["max_err"] < 1e-3


@pytest.mark.parametrize("script", ["vector_add.py", "softmax.py", "layer_norm.py", "matmul.py"])
def test_example_script_runs(script):
    out = subprocess.run([sys.executable, str(EXAMPLES / script), "interp"], capture_output=True, text=True,
                         timeout=300, env={**os.environ})
    assert out.returncode == 0, out.stderr
    assert "max error" in out.stdout
