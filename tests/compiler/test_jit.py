"""ky.compile, launching with specialisation, grid and argument errors, and heuristics."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl
from kaiyuan import ArgumentError, LaunchError
from kaiyuan.compiler import pipeline

HERE = os.path.abspath(__file__)


@ky.jit
def scale(x_ptr, out_ptr, n, factor, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    m = offs < n
    kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=m) * factor, mask=m)


def fresh(fn=scale):
    return ky.jit(fn.fn)


@pytest.fixture
def stage_runs(monkeypatch):
    calls = []
    real = pipeline._run_stages

    def spy(stages, module, meta):
        calls.append(dict(meta))
        return real(stages, module, meta)

    monkeypatch.setattr(pipeline, "_run_stages", spy)
    return calls


@pytest.fixture
def interp():
    with ky.device("interp"):
        yield


# ---------------------------------------------------------------------------------- ky.compile


def test_compile_signature_and_constants():
    k = ky.compile(scale, target="interp", signature={"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32", "factor": "fp32"},
                   constants={"BLOCK": 64})
    assert k.name == "scale"
    assert re.search(r"func\.func @scale\(%\w+: !ky\.ptr<f32>, %\w+: !ky\.ptr<f32>, %\w+: i32, %\w+: f32\)", k.asm["ky"])
    assert "end = 64 : i32" in k.asm["ky"]


def test_compile_with_a_runtime_param_given_as_constant():
    k = ky.compile(scale, target="interp", signature={"x_ptr": "*fp16", "out_ptr": "*fp16", "n": "i32"},
                   constants={"BLOCK": 8, "factor": 2.0})
    assert re.search(r"@scale\(%\w+: !ky\.ptr<f16>, %\w+: !ky\.ptr<f16>, %\w+: i32\)", k.asm["ky"])


@pytest.mark.parametrize("kwargs, words", [
    ({"signature": {"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32"}, "constants": {"BLOCK": 8}}, ["factor", "signature"]),
    ({"signature": {"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32", "factor": "fp32"}}, ["BLOCK", "constants"]),
    ({"signature": {"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32", "factor": "fp32", "bogus": "i32"},
      "constants": {"BLOCK": 8}}, ["bogus"]),
    ({"signature": {"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32", "factor": "fp32"},
      "constants": {"BLOCK": 8, "EXTRA": 1}}, ["EXTRA"]),
])
def test_compile_parameter_errors(kwargs, words):
    with pytest.raises(ArgumentError) as info:
        ky.compile(scale, target="interp", **kwargs)
    assert info.value.code == "KY-E201"
    assert f"{HERE}:" in str(info.value)
    for w in words:
        assert w in str(info.value)


def test_compile_needs_a_jit_kernel():
    with pytest.raises(ArgumentError):
        ky.compile(scale.fn, target="interp", signature={})


# --------------------------------------------------------------------------------- launching


def test_launch_runs_on_interp(interp):
    x = np.arange(100, dtype=np.float32)
    out = np.zeros_like(x)
    scale[(4,)](x, out, 100, 3.0, BLOCK=32)
    np.testing.assert_allclose(out, x * 3.0)
    grid_fn = lambda meta: (ky.cdiv(meta["n"], meta["BLOCK"]),) if hasattr(ky, "cdiv") else ((meta["n"] + meta["BLOCK"] - 1) // meta["BLOCK"],)  # noqa: E731
    out[:] = 0
    scale[grid_fn](x, out, 100, 2.0, BLOCK=16)
    np.testing.assert_allclose(out, x * 2.0)


def test_same_specialisation_is_compiled_once(interp, stage_runs):
    k = fresh()
    x = np.ones(64, np.float32)
    out = np.zeros_like(x)
    k[(2,)](x, out, 64, 2.0, BLOCK=32)
    k[(2,)](x, out, 64, 5.0, BLOCK=32)  # another float: same specialisation
    k[(2,)](x, out, 48, 5.0, BLOCK=32)  # 48 % 16 == 0 too
    assert len(k.cache) == 1
    np.testing.assert_allclose(out[:48], 5.0)


def test_int_one_becomes_a_constant(interp):
    k = fresh()
    x = np.ones(64, np.float32)
    out = np.zeros_like(x)
    k[(1,)](x, out, 1, 2.0, BLOCK=32)
    k[(1,)](x, out, 7, 2.0, BLOCK=32)
    assert len(k.cache) == 2
    one = [c for c in k.cache.values() if c.meta["constants"].get("n") == 1]
    assert len(one) == 1
    assert "i32" not in one[0].asm["ky"].split("{")[1].split(")")[0]  # n is not a parameter
    assert one[0].meta["arg_types"] == ["*fp32", "*fp32", "fp32"]
    np.testing.assert_allclose(out[:7], 2.0)


def test_divisibility_by_16_specialises(interp):
    k = fresh()
    x = np.ones(64, np.float32)
    out = np.zeros_like(x)
    k[(1,)](x, out, 32, 2.0, BLOCK=32)
    k[(1,)](x, out, 33, 2.0, BLOCK=32)
    k[(1,)](x, out, 48, 2.0, BLOCK=32)
    assert len(k.cache) == 2
    divs = sorted(tuple(c.meta["divisible_by_16"]) for c in k.cache.values())
    assert divs == [("x_ptr", "out_ptr"), ("x_ptr", "out_ptr", "n")]


def test_do_not_specialize(interp):
    k = ky.jit(scale.fn, do_not_specialize=["n"])
    x = np.ones(64, np.float32)
    out = np.zeros_like(x)
    k[(1,)](x, out, 1, 2.0, BLOCK=32)
    k[(1,)](x, out, 32, 2.0, BLOCK=32)
    assert len(k.cache) == 1


def test_different_dtypes_compile_separately(interp):
    k = fresh()
    for dt in (np.float32, np.float16, np.float32):
        x = np.ones(32, dt)
        out = np.zeros_like(x)
        k[(1,)](x, out, 32, 2.0, BLOCK=32)
        np.testing.assert_allclose(out, 2.0)
    assert len(k.cache) == 2
    types = sorted(c.meta["arg_types"][0] for c in k.cache.values())
    assert types == ["*fp16", "*fp32"]


def test_different_constexprs_compile_separately(interp):
    k = fresh()
    x = np.ones(64, np.float32)
    out = np.zeros_like(x)
    k[(1,)](x, out, 64, 2.0, BLOCK=64)
    k[(2,)](x, out, 64, 2.0, BLOCK=32)
    assert len(k.cache) == 2


def test_unaligned_pointer_is_a_separate_specialisation(interp):
    k = fresh()
    x = np.ones(65, np.float32)
    out = np.zeros_like(x)
    k[(1,)](x, out, 32, 2.0, BLOCK=32)
    k[(1,)](x[1:], out[1:], 32, 2.0, BLOCK=32)
    assert len(k.cache) == 2
    np.testing.assert_allclose(out[1:33], 2.0)


def test_zero_grid_launches_nothing(interp):
    x = np.ones(32, np.float32)
    out = np.zeros_like(x)
    scale[(0,)](x, out, 32, 2.0, BLOCK=32)
    assert not out.any()


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("grid, words", [
    ((1, 1, 1, 1), ["4 dimensions"]),
    ((), ["0 dimensions"]),
    (("a",), ["tuple"]),
    ((1.5, None), ["tuple"]),
    ((-1,), ["negative"]),
    (lambda meta: (1, 2, 3, 4), ["4 dimensions"]),
    (object(), ["tuple"]),
])
def test_bad_grids_are_launch_errors(interp, grid, words):
    x = np.ones(32, np.float32)
    with pytest.raises(LaunchError) as info:
        scale[grid](x, x, 32, 2.0, BLOCK=32)
    assert info.value.code == "KY-E200"
    assert f"{HERE}:" in str(info.value)
    for w in words:
        assert w in str(info.value)


def _def_line(k):
    import inspect

    return inspect.getsourcelines(k.fn)[1]


@pytest.mark.parametrize("args, kwargs, words", [
    ((1, 2, 3, 4, 5, 6), {}, ["takes 5 arguments, got 6"]),
    ((np.ones(4, np.float32), np.ones(4, np.float32), 4), {"BLOCK": 4}, ["missing", "factor"]),
    ((np.ones(4, np.float32), np.ones(4, np.float32), 4, 1.0), {"BLOCK": 4, "bogus": 3}, ["bogus"]),
    ((np.ones(4, np.float32), np.ones(4, np.float32), 4, 1.0), {"BLOCK": 4, "n": 3}, ["two values", "n"]),
    (("nope", np.ones(4, np.float32), 4, 1.0), {"BLOCK": 4}, ["x_ptr"]),
])
def test_argument_errors_name_the_kernel_file_and_line(interp, args, kwargs, words):
    with pytest.raises(ArgumentError) as info:
        scale[(1,)](*args, **kwargs)
    err = info.value
    assert err.code == "KY-E201"
    assert isinstance(err, LaunchError)
    assert f"{HERE}:{_def_line(scale)}" in str(err) or f"{HERE}:{_def_line(scale) + 1}" in str(err)
    for w in words:
        assert w in str(err), str(err)


def test_launch_options_are_accepted_and_ignored(interp):
    x = np.ones(32, np.float32)
    out = np.zeros_like(x)
    scale[(1,)](x, out, 32, 2.0, BLOCK=32, num_warps=8, num_stages=3)
    np.testing.assert_allclose(out, 2.0)


def test_calling_a_kernel_like_a_function_is_a_launch_error():
    with pytest.raises(LaunchError) as info:
        scale(1, 2, 3)
    assert info.value.code == "KY-E200"
    assert "scale[" in str(info.value) and f"{HERE}:" in str(info.value)


def test_kernel_repr_and_where():
    assert scale.where == f"{HERE}:{_def_line(scale) + 1}" or scale.where.startswith(HERE)
    assert "scale" in repr(scale)


# ------------------------------------------------------------------------------ heuristics
# (autotune has its own file: test_autotune.py)


def test_heuristics_compute_meta_parameters(interp):
    seen = []

    def block(meta):
        seen.append(meta["n"])
        return 64 if meta["n"] >= 64 else 16

    h = ky.heuristics({"BLOCK": block})(ky.jit(scale.fn))
    x = np.arange(64, dtype=np.float32)
    out = np.zeros_like(x)
    h[(1,)](x, out, 64, 2.0)
    np.testing.assert_allclose(out, x * 2.0)
    out[:] = 0
    h[(1,)](x, out, 16, 2.0)
    np.testing.assert_allclose(out[:16], x[:16] * 2.0)
    assert not out[16:].any()
    assert seen == [64, 16]
    assert len(h.fn.cache) == 2


# ------------------------------------------------------------------- the signature fast path
def test_repeated_signatures_skip_binding_and_specialising(interp, monkeypatch):
    """A launch whose arguments have the signature of an earlier one (same dtypes, alignment,
    scalar classes, constexprs) reuses its kernel through `_fast_specialise` without binding or
    specialising again, and still computes with its own arrays and values."""
    k = fresh()
    x = np.arange(64, dtype=np.float32)
    k[(2,)](x, np.zeros_like(x), 64, 2.0, BLOCK=32)
    slow = []
    monkeypatch.setattr(k, "specialise", lambda values: slow.append(values) or type(k).specialise(k, values))
    for n, f in ((48, 3.0), (32, 0.5), (64, -1.0)):       # n % 16 == 0 each time: one signature
        out = np.zeros_like(x)                             # a new output every call
        k[(2,)](x, out, n, f, BLOCK=32)
        np.testing.assert_array_equal(out[:n], x[:n] * np.float32(f))
        assert not out[n:].any()
    assert slow == [] and len(k.cache) == 1
    k[(2,)](x, np.zeros_like(x), 33, 2.0, BLOCK=32)       # n % 16 != 0: a new specialisation
    k[(2,)](x[1:], np.zeros(63, np.float32), 32, 2.0, BLOCK=32)  # unaligned: another
    k[(2,)](x.astype(np.float16), np.zeros(64, np.float16), 32, 2.0, BLOCK=32)  # fp16: another
    k[(2,)](x, np.zeros_like(x), 1, 2.0, BLOCK=32)        # n == 1 is a constant: another
    assert len(slow) == 4 and len(k.cache) == 5


def test_signature_path_matches_the_general_path(interp):
    """Every launch the fast path serves must name the kernel the general path would choose."""
    k = fresh()
    cases = [(np.ones(64, np.float32), 64, 2.0), (np.ones(65, np.float32)[1:], 64, 2.0),
             (np.ones(64, np.float16), 17, 1.5), (np.ones(64, np.float32), 1, 2.0),
             (np.ones(64, np.float32), 2**40, 2.0)]
    for x, n, f in cases * 2:
        out = np.zeros_like(x)
        kernel = k[(1,)](x, out, n, f, BLOCK=64)
        specs, _, device = k.specialise(k.bind((x, out, n, f), {"BLOCK": 64}))
        assert kernel is k.cache[(device.name, specs)]


def test_a_launch_memo_does_not_keep_fresh_outputs_alive():
    """An op making a new output per call must be able to reuse the freed block at once: the
    launch memo is kept only for launches that repeat the same arrays."""
    from kaiyuan.runtime.memory import memory_stats

    q = np.random.default_rng(0).standard_normal((1, 2, 16, 8)).astype(np.float32)
    for _ in range(2):  # (the first call tunes: its timed launches repeat, so one memo is kept)
        ky.ops.scaled_dot_product_attention(q, q, q)
    before = memory_stats("cpu")["allocated_bytes"]
    for _ in range(3):
        ky.ops.scaled_dot_product_attention(q, q, q)       # result dropped at once
        assert memory_stats("cpu")["allocated_bytes"] == before
