"""Triton idioms beyond the four tutorials: hints the compiler may ignore (multiple_of,
max_contiguous, eviction_policy, cache_modifier, num_stages/num_warps launch options, tl.range
hints), tl.math spellings, @triton.heuristics, and @triton.autotune keys (per key and per device)."""

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.triton as triton
import kaiyuan.triton.language as tl


@triton.jit
def hinted_copy_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    offs = tl.max_contiguous(tl.multiple_of(offs, BLOCK), BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0, eviction_policy="evict_last", cache_modifier=".cg")
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for i in tl.range(0, 3, num_stages=2, loop_unroll_factor=2):
        acc += tl.math.exp(x * 0.0) * (i + 1)  # 1 + 2 + 3 == 6
    tl.store(y_ptr + offs, x.to(tl.float32) * acc, mask=mask, eviction_policy="evict_first")


def test_hints_and_launch_options_are_accepted(device):
    x = np.arange(100, dtype=np.float16)
    y = np.zeros(100, np.float32)
    hinted_copy_kernel[(triton.cdiv(100, 32),)](x, y, 100, BLOCK=32, num_warps=4, num_stages=3)
    np.testing.assert_array_equal(y, x.astype(np.float32) * 6)


def test_tl_range_outside_a_kernel_is_pythons_range():
    assert list(tl.range(2, 9, 3)) == [2, 5, 8]


@triton.heuristics({"EVEN_N": lambda args: args["n"] % args["BLOCK"] == 0})
@triton.jit
def heuristic_kernel(x_ptr, n, BLOCK: tl.constexpr, EVEN_N: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    if EVEN_N:
        tl.store(x_ptr + offs, tl.load(x_ptr + offs) + 1)
    else:
        tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) + 2, mask=offs < n)


@pytest.mark.parametrize("n,added", [(64, 1), (50, 2)])
def test_heuristics(device, n, added):
    x = np.zeros(n, np.int32)
    heuristic_kernel[(triton.cdiv(n, 16),)](x, n, BLOCK=16)
    assert (x == added).all()


@triton.autotune(configs=[triton.Config({"BLOCK": 16}), triton.Config({"BLOCK": 64})], key=["n"],
                 restore_value=["x_ptr"])
@triton.jit
def tuned_inc_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) + 1, mask=offs < n)


def _tuned_inc(n):
    x = np.arange(n, dtype=np.int32)
    tuned_inc_kernel[lambda meta: (triton.cdiv(n, meta["BLOCK"]),)](x, n)
    np.testing.assert_array_equal(x, np.arange(n) + 1)  # restore_value undid the tuning runs' writes


def test_autotune_once_per_key(device):
    _tuned_inc(100)
    keys = set(tuned_inc_kernel.best)
    _tuned_inc(100)
    assert set(tuned_inc_kernel.best) == keys  # same key: no new tuning entry
    _tuned_inc(300)
    assert len(tuned_inc_kernel.best) == len(keys) + 1
    assert tuned_inc_kernel.best_config.kwargs["BLOCK"] in (16, 64)


def test_autotune_keys_include_the_device():
    names = [d.name for d in ky.devices() if d.available]
    if len(names) < 2:
        pytest.skip("needs two devices")
    for name in names[:2]:
        with ky.device(name):
            _tuned_inc(77)
    keys = [k for k in tuned_inc_kernel.best if k.endswith("77")]
    assert len(keys) == 2, keys  # one tuning result per device
