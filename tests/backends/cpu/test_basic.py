"""Vector add, softmax, the backend object, and the shape of the emitted C."""

import re

import numpy as np
import pytest

from kaiyuan.backends.cpu import CpuBackend
from kaiyuan.runtime.errors import ToolchainError, UnsupportedError

from .helpers import Compiled, module
from .kernels import SOFTMAX, VECADD, sized


def program_body(c_text: str) -> str:
    return c_text[c_text.index("static inline void ky_program"):c_text.index("int64_t ky_range(")]


def test_vector_add_masked_tail_and_single_fused_loop():
    k = Compiled(sized(VECADD, 256))
    n = 1000                                   # not a multiple of the block: last program is masked
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(1024).astype(np.float32), rng.standard_normal(1024).astype(np.float32)
    z = np.full(1024, 7.0, np.float32)
    k(((n + 255) // 256,), x, y, z, (n, "i32"))
    np.testing.assert_array_equal(z[:n], x[:n] + y[:n])      # one IEEE add: exact
    assert (z[n:] == 7.0).all()
    body = program_body(k.asm["c"])
    assert len(re.findall(r"\bfor \(", body)) == 1, body     # whole element-wise chain: one loop
    assert "#pragma omp simd" in body
    assert "[" not in body.split("for (", 1)[1].split("{", 1)[0]  # no tile arrays needed
    assert not re.search(r"float a\d+\[", body)


@pytest.mark.parametrize("ncols", [1024, 1000])
def test_row_softmax(ncols):
    k = Compiled(sized(SOFTMAX, 1024))
    rows = 64
    x = (np.random.default_rng(1).standard_normal((rows, ncols)) * 10).astype(np.float32)
    y = np.zeros_like(x)
    k((rows,), x, y, (ncols, "i32"), (ncols, "i32"))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    ref = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(y, ref, rtol=2e-6, atol=1e-9)  # a few ulps: exp is ours, sums reorder
    body = program_body(k.asm["c"])
    # three passes over the row: load+max, exp+sum, divide+store (the first two lane-blocked)
    assert len(re.findall(r"\bfor \(int i0b? = 0", body)) == 3
    assert len(re.findall(r"\bfor \(int i0b = 0", body)) == 2


def test_softmax_loop_is_vectorised(tmp_path):
    """The row loop must be vectorised by gcc (checked with -fopt-info-vec on the emitted C)."""
    import subprocess

    from kaiyuan.backends.cpu import toolchain

    k = Compiled(sized(SOFTMAX, 1024))
    src = tmp_path / "k.c"
    src.write_text(k.asm["c"])
    cc = toolchain.find_cc()
    if "clang" in toolchain.compiler_version(cc).lower():
        pytest.skip("-fopt-info-vec is a gcc option")
    out = subprocess.run([cc, *toolchain.FLAGS, "-fopt-info-vec-optimized", str(src), "-o", str(tmp_path / "k.so")],
                         capture_output=True, text=True).stderr
    vectorised = {int(m) for m in re.findall(r"k\.c:(\d+):\d+: optimized: loop vectorized", out)}
    lines = k.asm["c"].splitlines()
    simd_loops = [i + 2 for i, s in enumerate(lines) if "#pragma omp simd" in s and "ky_program" not in s]
    body_start = next(i for i, s in enumerate(lines) if "static inline void ky_program" in s)
    body_end = next(i for i, s in enumerate(lines) if s.startswith("int64_t ky_range("))
    row_loops = [n for n in simd_loops if n > body_start] + [body_end]
    assert len(row_loops) == 4
    for start, end in zip(row_loops, row_loops[1:]):   # gcc reports a line inside the loop
        assert any(start <= v < end for v in vectorised), (start, out)


def test_backend_and_device():
    b = CpuBackend()
    assert b.name == "cpu" and b.unavailable_reason() is None
    d = b.device(0)
    assert d.is_host and d.properties["cores"] >= 1
    assert "compiler" in d.properties and isinstance(d.properties["isa"], list)
    names = [s.name for s in d.compiler.stages({})]
    assert names == ["ky", "ky-cpu", "c", "so"]
    assert "-fopenmp" in d.compiler.toolchain_version()


def test_compiler_failure_is_toolchain_error(monkeypatch):
    from kaiyuan.ir.text import parse_module

    stages = CpuBackend().device(0).compiler.stages({})
    monkeypatch.setenv("CC", "false")
    art, meta = parse_module(sized(VECADD, 16)), {"name": "vadd", "arg_types": [], "constants": {}}
    with pytest.raises(ToolchainError) as e:
        for st in stages:
            art = st.run(art, meta)
    assert "C source kept at" in str(e.value)
    kept = str(e.value).split("C source kept at ")[1].split()[0]
    assert open(kept).read().startswith("/* kaiyuan cpu backend")


def test_unknown_op_is_unsupported_error():
    text = module('''    %c = arith.constant 7 : i32
    %p = math.ctpop %c : i32 loc("pop.py":3:1)
    "ky.store"(%x, %p) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<i32>, i32) -> ()''',
                  "%x: !ky.ptr<i32>")
    with pytest.raises(UnsupportedError) as e:
        Compiled(text)
    assert "math.ctpop" in str(e.value) and "pop.py:3" in str(e.value)


def test_big_tiles_use_heap_scratch_and_3d_grid():
    """Tiles over the stack budget move to a per-thread heap scratch; results stay right."""
    k = Compiled(sized(SOFTMAX, 131072))
    assert "ky_scratch" in k.asm["c"]
    x = np.random.default_rng(12).standard_normal((3, 100000)).astype(np.float32)
    y = np.zeros_like(x)
    k((3,), x, y, (100000, "i32"), (100000, "i32"))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=2e-5, atol=1e-12)


def test_program_ids_on_a_3d_grid():
    k = Compiled(module("\n".join([
        '    %x = "ky.program_id"() <{axis = 0 : i32}> : () -> i32',
        '    %y = "ky.program_id"() <{axis = 1 : i32}> : () -> i32',
        '    %z = "ky.program_id"() <{axis = 2 : i32}> : () -> i32',
        '    %nx = "ky.num_programs"() <{axis = 0 : i32}> : () -> i32',
        '    %ny = "ky.num_programs"() <{axis = 1 : i32}> : () -> i32',
        '    %zy = arith.muli %z, %ny : i32',
        '    %zyy = arith.addi %zy, %y : i32',
        '    %l = arith.muli %zyy, %nx : i32',
        '    %lin = arith.addi %l, %x : i32',
        '    %p = "ky.addptr"(%out, %lin) : (!ky.ptr<i32>, i32) -> !ky.ptr<i32>',
        '    %h = arith.constant 100 : i32',
        '    %zz = arith.muli %z, %h : i32',
        '    %v = arith.addi %zz, %x : i32',
        '    "ky.store"(%p, %v) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (!ky.ptr<i32>, i32) -> ()',
    ]), "%out: !ky.ptr<i32>"))
    out = np.full((4, 3, 5), -1, np.int32)
    k((5, 3, 4), out)
    zz, _, xx = np.meshgrid(np.arange(4), np.arange(3), np.arange(5), indexing="ij")
    np.testing.assert_array_equal(out, zz * 100 + xx)
