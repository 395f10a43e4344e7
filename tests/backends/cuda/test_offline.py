"""`ky.compile(kernel, target="cuda:sm_XX", ...)` without a GPU: PTX and cubin from NVRTC.

Checks on the PTX say the code generator did what it should for each kind of kernel: the entry
point, shared memory and barriers for reductions, FMAs for a dot, global atomics, the f16 and
bf16 conversions. The cubin is an ELF file for the requested architecture.
"""

import re

import numpy as np
import pytest

import kaiyuan as ky
from kaiyuan.runtime.errors import DeviceError, UnsupportedError

from . import kernels
from ._nvrtc import requires_nvrtc

pytestmark = requires_nvrtc
ARCHS = ["sm_90", "sm_80"]


def compile_for(arch, kernel, signature, constants=None):
    return ky.compile(kernel, target=f"cuda:{arch}", signature=signature, constants=constants or {})


@pytest.mark.parametrize("arch", ARCHS)
def test_vector_add(arch):
    c = compile_for(arch, kernels.vector_add, {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32"},
                    {"BLOCK": 1024})
    assert list(c.asm) == ["ky", "ky-simt", "cuda", "ptx", "cubin"]
    assert c.program is None and c.device.name == f"cuda:{arch}"
    assert '__global__ void __launch_bounds__(128) ky_vector_add(' in c.asm["cuda"]
    ptx = c.asm["ptx"]
    assert f".target {arch}" in ptx and ".visible .entry ky_vector_add(" in ptx
    assert "ld.global" in ptx and "st.global" in ptx and "add.f32" in ptx
    assert c.asm["cubin"][:4] == b"\x7fELF"
    assert c.meta["cuda"]["lanes"] == 128 and c.meta["cuda"]["params"][3] == ["scalar", "i32", "int32_t"]


@pytest.mark.parametrize("arch", ARCHS)
def test_softmax_reduces_in_shared_memory(arch):
    c = compile_for(arch, kernels.softmax, {"x_ptr": "*fp16", "y_ptr": "*fp32", "n_cols": "i32", "stride": "i32"},
                    {"BLOCK": 1024})
    ptx = c.asm["ptx"]
    assert ".extern .shared .align 16 .b8 ky_smem[]" in ptx
    assert "st.shared" in ptx and "ld.shared" in ptx and "bar.sync" in ptx
    assert "cvt.f32.f16" in ptx and "ex2.approx" in ptx
    assert 0 < c.meta["cuda"]["smem_bytes"] <= 48 * 1024


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_matmul_uses_fma(arch, dtype):
    c = compile_for(arch, kernels.matmul, {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "c_ptr": "*fp32",
                                           "M": "i32", "N": "i32", "K": "i32"}, {"BM": 32, "BN": 32, "BK": 16})
    ptx = c.asm["ptx"]
    assert "fma.rn.f32" in ptx and "bar.sync" in ptx
    assert "mma." not in ptx    # the SIMT emitter's dot is FMAs per lane; tensor cores are not used yet
    assert c.asm["cubin"][:4] == b"\x7fELF"


@pytest.mark.parametrize("arch", ARCHS)
def test_atomics_are_native(arch):
    c = compile_for(arch, kernels.histogram, {"x_ptr": "*i32", "bins_ptr": "*i32", "total_ptr": "*fp32", "n": "i32"},
                    {"BLOCK": 256})
    ptx = c.asm["ptx"]
    assert re.search(r"\b(atom|red)(\.global)?\.add\.[us]32\b", ptx)     # through a generic pointer
    assert re.search(r"\b(atom|red)\.global\.add\.f32\b", ptx)
    c = compile_for(arch, kernels.spin_lock, {"lock_ptr": "*i32", "count_ptr": "*i32"})
    assert "atom.global.cas.b32" in c.asm["ptx"] and "atom.global.exch.b32" in c.asm["ptx"]


@pytest.mark.parametrize("arch", ARCHS)
def test_half_conversions(arch):
    c = compile_for(arch, kernels.cast_halves, {"x_ptr": "*fp32", "h_ptr": "*fp16", "b_ptr": "*bf16", "n": "i32"},
                    {"BLOCK": 64})
    assert "cvt.rn.f16.f32" in c.asm["ptx"]           # hardware rounding for f16
    assert c.meta["cuda"]["lanes"] == 32


def test_device_assert_takes_the_error_slot():
    c = compile_for("sm_90", kernels.checked, {"x_ptr": "*i32", "n": "i32"})
    info = c.meta["cuda"]
    assert info["assert_slot"] and info["asserts"][0][1] == "n must be positive"
    assert ".param .u64 ky_checked_param_2" in c.asm["ptx"]


def test_compute_target_gives_ptx_as_the_binary():
    c = compile_for("compute_90", kernels.vector_add, {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32",
                                                       "n": "i32"}, {"BLOCK": 256})
    assert c.asm["cubin"] == c.asm["ptx"].encode() + b"\0"


def test_unknown_or_unsupported_targets_are_clear_errors():
    sig = {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32"}
    with pytest.raises(UnsupportedError, match="cannot compile for sm_50"):
        compile_for("sm_50", kernels.vector_add, sig, {"BLOCK": 64})
    with pytest.raises(UnsupportedError, match="unknown CUDA target"):
        compile_for("hopper", kernels.vector_add, sig, {"BLOCK": 64})
    with pytest.raises(DeviceError, match="cannot compile for 'interp:x'"):
        ky.compile(kernels.vector_add, target="interp:x", signature=sig, constants={"BLOCK": 64})


def test_a_compile_only_target_has_no_memory():
    c = compile_for("sm_90", kernels.vector_add, {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32",
                                                  "n": "i32"}, {"BLOCK": 64})
    with pytest.raises(DeviceError, match="compile-only target"):
        ky.tensor(np.zeros(4, np.float32), device=c.device)


def test_dump_writes_cuda_source_and_ptx(tmp_path, monkeypatch):
    monkeypatch.setenv("KAIYUAN_DUMP", str(tmp_path))
    compile_for("sm_90", kernels.vector_add, {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32"},
                {"BLOCK": 512})
    names = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert names == ["00-ky.mlir", "01-ky-simt.mlir", "02-cuda.cu", "03-ptx.ptx", "04-cubin.bin"]
