"""Eager launch plans (kaiyuan.ops._replay): the third call of a signature replays the launches the
second recorded. Every replayed result is checked against a reference computed from that call's
own inputs (fresh random data each call), so a plan that kept pointing at old arrays fails."""

import numpy as np
import pytest
import torch

import kaiyuan as ky
from kaiyuan.ops import _replay
from kaiyuan.runtime import capture as cap

from .conftest import TOL, to_f64


def counts(op):
    return dict(_replay.stats()[op.__name__])


def fresh(rng, *shapes, dtype=np.float32):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def close(got, want, dtype="fp32"):
    got, want = to_f64(got), np.asarray(want, np.float64)
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= TOL[dtype] * scale * 10, np.abs(got - want).max()


def test_attention_replays_with_new_inputs(device, rng):
    before = counts(ky.ops.scaled_dot_product_attention)
    shape = (1, 2, 8, 16) if device.name == "interp" else (2, 3, 40, 32)
    for _ in range(5):
        q, k, v = fresh(rng, shape, shape, shape)
        got = ky.ops.scaled_dot_product_attention(q, k, v, is_causal=True)
        want = torch.nn.functional.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)), is_causal=True)
        close(got, want.numpy())
    after = counts(ky.ops.scaled_dot_product_attention)
    assert after["plans"] == before["plans"] + 1
    assert after["replays"] == before["replays"] + 3


def test_conv2d_scratch_bias_residual_and_out(device, rng):
    """A padded conv has scratch memory (the padded input copy) besides its result; `out=` and a
    fused residual + ReLU epilogue replay too."""
    n, c, h, oc = (1, 2, 5, 3) if device.name == "interp" else (2, 8, 13, 16)
    y = np.empty((n, oc, h, h), np.float32)
    before = counts(ky.ops.conv2d)
    for i in range(5):
        x, w, b, r = fresh(rng, (n, c, h, h), (oc, c, 3, 3), (oc,), (n, oc, h, h))
        want = torch.relu(torch.nn.functional.conv2d(*map(torch.from_numpy, (x, w, b)), padding=1) + torch.from_numpy(r))
        got = ky.ops.conv2d(x, w, b, padding=1, residual=r, activation="relu", out=y)
        assert got is y
        close(y, want.numpy())
        got = ky.ops.conv2d(x, w, b, padding=1, residual=r, activation="relu")
        assert type(got) is np.ndarray and got is not y
        close(got, want.numpy())
    after = counts(ky.ops.conv2d)
    assert after["plans"] == before["plans"] + 2 and after["replays"] == before["replays"] + 6


@pytest.mark.parametrize("kind", ["numpy", "tensor", "torch"])
def test_result_kind_follows_the_inputs(kind, rng):
    wrap = {"numpy": lambda a: a, "tensor": ky.tensor, "torch": torch.from_numpy}[kind]
    for _ in range(4):
        a, b = fresh(rng, (37, 19), (19, 23))
        got = ky.ops.matmul(wrap(a), wrap(b))
        assert type(got) is {"numpy": np.ndarray, "tensor": ky.Tensor, "torch": torch.Tensor}[kind]
        close(got.numpy() if kind != "numpy" else got, a.astype(np.float64) @ b)


def test_linear_replays_and_tensor_out(rng):
    out = ky.empty((5, 7, 24))
    before = counts(ky.ops.linear)
    for _ in range(4):
        x, w, bias = fresh(rng, (5, 7, 40), (24, 40), (24,))
        assert ky.ops.linear(ky.tensor(x), ky.tensor(w), ky.tensor(bias), activation="gelu", out=out) is out
        ref = torch.nn.functional.gelu(torch.nn.functional.linear(*map(torch.from_numpy, (x, w, bias))))
        close(out, ref.numpy())
    assert counts(ky.ops.linear)["replays"] == before["replays"] + 2


def test_aliasing_and_alignment_are_part_of_the_signature(rng):
    """A plan recorded for matmul(a, a) must not serve matmul(a, b); a view one element off
    (another alignment) gets its own plan."""
    for _ in range(3):
        (a,) = fresh(rng, (16, 16))
        close(ky.ops.matmul(a, a), a.astype(np.float64) @ a)
    for _ in range(3):
        a, b = fresh(rng, (16, 16), (16, 16))
        close(ky.ops.matmul(a, b), a.astype(np.float64) @ b)
    for _ in range(3):
        (big,) = fresh(rng, (16 * 16 + 1,))
        a, b = big[1:].reshape(16, 16), big[:-1].reshape(16, 16)
        close(ky.ops.matmul(a, b), a.astype(np.float64) @ b)


def test_transposed_inputs_replay(rng):
    for _ in range(4):
        a, b = fresh(rng, (30, 20), (25, 30))
        close(ky.ops.matmul(a.T, b.T), a.T.astype(np.float64) @ b.T)


def test_a_replay_inside_capture_is_recorded(rng):
    """The graph executor captures the launches of a step: a replayed op must still report them."""
    a, b = fresh(rng, (12, 9), (9, 10))
    c = np.empty((12, 10), np.float32)
    for _ in range(3):
        ky.ops.matmul(a, b, out=c)
    before = counts(ky.ops.matmul)["replays"]
    with cap.capture() as launches:
        ky.ops.matmul(a, b, out=c)
    assert counts(ky.ops.matmul)["replays"] == before + 1
    assert len(launches) >= 1 and launches.pure
    c[...] = 0
    cap.replay_list(launches)()
    close(c, a.astype(np.float64) @ b)


def test_replays_on_a_user_stream(rng):
    s = ky.Stream()
    with ky.stream(s):
        for _ in range(4):
            a, b = fresh(rng, (20, 11), (11, 6))
            out = ky.ops.matmul(ky.tensor(a), ky.tensor(b))
            s.synchronize()
            close(out, a.astype(np.float64) @ b)


def test_host_work_refuses_a_plan(rng):
    """A non-contiguous ky.Tensor weight is copied on the host (write_host: the capture is not
    pure), so conv2d's signature runs as usual from then on."""
    before = counts(ky.ops.conv2d)
    for _ in range(4):
        x, w = fresh(rng, (1, 3, 6, 6), (4, 3, 3, 3))
        wt = ky.tensor(np.ascontiguousarray(w.transpose(1, 0, 2, 3)))
        wv = ky.Tensor(wt.buffer, (4, 3, 3, 3), wt.dtype, (9, 36, 3, 1), wt.offset)  # w as a strided view
        got = ky.ops.conv2d(ky.tensor(x), wv)
        close(got, torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w)).numpy())
    after = counts(ky.ops.conv2d)
    assert after["refused"] == before["refused"] + 1 and after["replays"] == before["replays"]


def test_capture_taint_and_allocations():
    t = ky.empty((4,))
    with cap.capture() as outer:
        with cap.capture() as inner:
            buf = ky.empty((8,))
            t.copy_(np.arange(4, dtype=np.float32))
        assert not inner.pure
    assert not outer.pure
    assert any(b is buf.buffer for b in inner.allocated) and any(b is buf.buffer for b in outer.allocated)
    with cap.capture() as clean:
        ky.empty((2,))
    assert clean.pure


def test_switched_off(rng):
    old = _replay.set_enabled(False)
    try:
        before = counts(ky.ops.matmul)
        for _ in range(4):
            a, b = fresh(rng, (8, 8), (8, 8))
            close(ky.ops.matmul(a, b), a.astype(np.float64) @ b)
        assert counts(ky.ops.matmul) == before
    finally:
        _replay.set_enabled(old)


def test_kept_results_and_threads_sharing_a_plan(rng):
    """Scratch stays with the plan between calls, the result does not: results kept by the caller
    (so the next call's result lands elsewhere) stay intact, and two threads replaying the same
    padded conv at once (one of them gets fresh scratch) both get their own answer."""
    import threading

    def conv_ref(x, w):
        return torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()

    kept = []
    for _ in range(6):
        x, w = fresh(rng, (1, 8, 17, 17), (16, 8, 3, 3))
        kept.append((ky.ops.conv2d(x, w, padding=1), conv_ref(x, w)))
    for got, want in kept:
        close(got, want)
    errors = []

    def worker(seed):
        r = np.random.default_rng(seed)
        try:
            for _ in range(20):
                x, w = fresh(r, (1, 8, 17, 17), (16, 8, 3, 3))
                close(ky.ops.conv2d(x, w, padding=1), conv_ref(x, w))
        except AssertionError as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_overlap_signature_sees_past_an_empty_array():
    """(position, array, address, byte span) records: the first and third arrays overlap, with an
    empty array's span between them in address order."""
    spans = [(0, 100), (50, 50), (60, 70)]
    arrays = [(i, None, lo, span) for i, span in enumerate(spans) for lo in [span[0]]]
    assert (0, 2) in _replay._overlaps(arrays)
    assert _replay._overlaps([(0, None, 0, (0, 8)), (1, None, 8, (8, 16))]) == ()


def test_one_array_passed_as_several_arguments_replays(rng):
    """attention(x, x, x): every pointer lies in three arguments that start together; the plan
    takes the first, and arrays that merely overlap get a signature of their own."""
    before = counts(ky.ops.scaled_dot_product_attention)
    for _ in range(4):
        (x,) = fresh(rng, (1, 2, 24, 16))
        want = torch.nn.functional.scaled_dot_product_attention(*[torch.from_numpy(x)] * 3)
        close(ky.ops.scaled_dot_product_attention(x, x, x), want.numpy())
    after = counts(ky.ops.scaled_dot_product_attention)
    assert after["plans"] == before["plans"] + 1 and after["replays"] == before["replays"] + 2
    for _ in range(3):  # k and v overlap q but start elsewhere: not the plan above
        (big,) = fresh(rng, (1, 2, 26, 16))
        q, k = big[:, :, :24], big[:, :, 1:25]
        want = torch.nn.functional.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, k)))
        close(ky.ops.scaled_dot_product_attention(q, k, k), want.numpy())
