"""The opencl backend on a real OpenCL device (PoCL's CPU device in CI): listing, capabilities,
host arrays, device tensors, and loading a cached binary in a fresh process."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kaiyuan as ky

from .kernels import add_kernel, softmax_kernel

ROWS = {info.name: info for info in ky.devices()}
pytestmark = pytest.mark.skipif(not ROWS.get("opencl:0") or not ROWS["opencl:0"].available,
                                reason="no OpenCL device (pip install pocl-binary-distribution)")


def test_devices_lists_each_opencl_device_with_its_platform():
    rows = [r for r in ky.devices() if r.name.startswith("opencl:")]
    assert rows and all(r.available for r in rows)
    props = rows[0].properties
    for key in ("platform", "device", "version", "compute_units", "local_memory_bytes", "max_work_group_size"):
        assert key in props, props
    assert props["compute_units"] >= 1 and props["local_memory_bytes"] > 0


def test_capabilities_come_from_the_device_info():
    dev = ky.device("opencl:0")
    caps = dev.capabilities
    assert caps.local_memory_bytes == dev.properties["local_memory_bytes"]
    assert caps.max_program_lanes == dev.properties["max_work_group_size"]
    assert caps.vector_width_bits % 32 == 0 and caps.vector_width_bits >= 32
    assert caps.float16 and caps.bfloat16      # emulated with integer ops where cl_khr_fp16 is absent


def test_host_arrays_are_wrapped_and_hold_the_result():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(1000).astype(np.float32), rng.standard_normal(1000).astype(np.float32)
    base = np.zeros(2000, np.float32)
    out = base[::2]                                  # a strided view: wrapped over its byte bounds
    with ky.device("opencl:0"):
        res = np.zeros(1000, np.float32)
        add_kernel[(4,)](x, y, res, 1000, BLOCK=256)
    np.testing.assert_array_equal(res, x + y)
    buf = ky.device("opencl:0").allocator.wrap_host(out)
    assert buf is not None and buf.nbytes == 1999 * 4 and buf.owner is out


def test_device_tensors_round_trip_and_run_kernels():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 300)).astype(np.float32)
    xt = ky.tensor(x, device="opencl:0")
    yt = ky.empty((8, 300), dtype=ky.fp32, device="opencl:0")
    softmax_kernel[(8,)](xt, yt, 300, 300, BLOCK=512)
    ref = np.exp(x - x.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    np.testing.assert_allclose(yt.numpy(), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(xt.to("cpu").numpy(), x)


LOADER = r"""
import json, sys
import numpy as np
import kaiyuan as ky
from kaiyuan.runtime.backend import PointerArg, ScalarArg
from kaiyuan.runtime.dtypes import BY_NAME
binary = open(sys.argv[1], "rb").read()
meta = json.load(open(sys.argv[2]))
dev = ky.device("opencl:0")
program = dev.compiler.load(binary, meta)          # bytes and meta only: nothing compiled here
x = ky.tensor(np.arange(100, dtype=np.float32), device=dev)
out = ky.empty((100,), dtype=ky.fp32, device=dev)
args = [PointerArg(x.buffer, x.offset, BY_NAME["fp32"]), PointerArg(x.buffer, x.offset, BY_NAME["fp32"]),
        PointerArg(out.buffer, out.offset, BY_NAME["fp32"]), ScalarArg(100, BY_NAME["i32"])]
program.launch((1, 1, 1), args)
print(json.dumps(out.numpy().tolist()))
"""


def test_cached_binary_loads_in_a_fresh_process(tmp_path):
    k = ky.compile(add_kernel, target="opencl:0", signature={"x": "*fp32", "y": "*fp32", "out": "*fp32", "n": "i32"},
                   constants={"BLOCK": 128})
    assert list(k.asm) == ["ky", "ky-simt", "cl", "bin"]
    assert "__kernel" in k.asm["cl"] and isinstance(k.asm["bin"], bytes)
    (tmp_path / "k.bin").write_bytes(k.asm["bin"])
    (tmp_path / "meta.json").write_text(json.dumps({key: v for key, v in k.meta.items()
                                                    if isinstance(v, (str, int, float, list, dict))}))
    (tmp_path / "load.py").write_text(LOADER)
    proc = subprocess.run([sys.executable, str(tmp_path / "load.py"), str(tmp_path / "k.bin"),
                           str(tmp_path / "meta.json")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KAIYUAN_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(json.loads(proc.stdout.splitlines()[-1]), 2 * np.arange(100, dtype=np.float32))
