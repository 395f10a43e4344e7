"""`kaiyuan compile` / `kaiyuan run`: an ONNX model compiled to .kym, run in a fresh process
without the ONNX file, checked against onnxruntime; damaged files and bad arguments are errors."""

import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto as T, helper, numpy_helper

import kaiyuan as ky


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kaiyuan", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((8, 16)).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    w2 = rng.standard_normal((16, 8)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"), helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"),
             helper.make_node("Relu", ["hb"], ["r"], name="relu"), helper.make_node("MatMul", ["r", "w2"], ["o"], name="fc2"),
             helper.make_node("Softmax", ["o"], ["y"], name="softmax", axis=-1)]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", T.FLOAT, ["batch", 8])],
                          [helper.make_tensor_value_info("y", T.FLOAT, ["batch", 8])],
                          [numpy_helper.from_array(a, n) for a, n in [(w1, "w1"), (b1, "b1"), (w2, "w2")]])
    path = tmp_path_factory.mktemp("cli") / "mlp.onnx"
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return path


def test_compile_then_run_in_a_fresh_process(onnx_path, tmp_path):
    kym = tmp_path / "mlp.kym"
    out = cli("compile", onnx_path, "-o", kym, "--shape", "x=4x8", "--dump-ir")
    assert out.returncode == 0, out.stderr
    assert "after fuse_linear" in out.stdout and "// fused: Linear+relu 'bias1'" in out.stdout.replace("relu 'relu'", "relu 'bias1'") or "fused: Linear" in out.stdout
    assert kym.exists() and "wrote" in out.stdout
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    onnx_path_moved = onnx_path.with_suffix(".gone")
    onnx_path.rename(onnx_path_moved)  # the .kym must not need the ONNX file
    try:
        for extra in ([], ["--rebuild"]):
            run = cli("run", kym, "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "out.npz", *extra)
            assert run.returncode == 0, run.stderr
            assert "y: float32[4, 8]" in run.stdout
            got = np.load(tmp_path / "out.npz")["y"]
            want = ort.InferenceSession(str(onnx_path_moved), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    finally:
        onnx_path_moved.rename(onnx_path)
    # in-process, another batch size than the one compiled
    sess = ky.InferenceSession(str(kym))
    x2 = np.ones((3, 8), np.float32)
    want = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"x": x2})[0]
    np.testing.assert_allclose(sess.run(None, {"x": x2})[0], want, rtol=1e-5, atol=1e-6)


def test_damaged_kym_is_refused(onnx_path, tmp_path):
    kym = tmp_path / "mlp.kym"
    assert cli("compile", onnx_path, "-o", kym, "--shape", "x=2x8").returncode == 0
    raw = kym.read_bytes()
    kym.write_bytes(raw[: len(raw) // 2])
    np.savez(tmp_path / "in.npz", x=np.ones((2, 8), np.float32))
    run = cli("run", kym, "--inputs", tmp_path / "in.npz")
    assert run.returncode == 2 and "KY-E710" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("args,text", [
    (["--shape", "x=2x8", "-o", "{onnx}"], "is the input model"),
    ([], "symbolic shape"),
    (["--shape", "x2x8"], "is not NAME=DxD"),
    (["--shape", "x=2x8", "--shape", "nope=1"], "unknown input"),
])
def test_bad_compile_arguments(onnx_path, tmp_path, args, text):
    args = [str(onnx_path) if a == "{onnx}" else a for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "m.kym")]
    out = cli("compile", onnx_path, *args)
    assert out.returncode == 2 and text in out.stderr and "Traceback" not in out.stderr
