"""The API's edges: ky.Tensors, non-contiguous and 0-d arrays, argument errors, the algorithm
override and its logged fallback, single-tensor variants."""

from __future__ import annotations

import logging

import ml_dtypes
import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.comm as dist


def test_ky_tensors_and_strided_arrays():
    def body(rank):
        t = ky.tensor(np.full((2, 3), rank + 1, ml_dtypes.bfloat16))
        dist.all_reduce(t)
        assert t.numpy().astype(np.float32).tolist() == [[3.0] * 3] * 2
        base = np.zeros((4, 4), np.int32)
        view = base[:, 1]  # non-contiguous: reduced through a copy, written back in place
        view[...] = rank + 1
        dist.all_reduce(view, op=dist.ReduceOp.PROD)
        assert base[:, 1].tolist() == [2] * 4 and base[:, 0].tolist() == [0] * 4
        scalar = np.array(rank, np.float64)
        dist.broadcast(scalar, src=1)
        assert scalar == 1.0
        out = ky.zeros((2, 2), ky.float32)
        dist.all_gather_into_tensor(out, ky.tensor(np.full(2, rank, np.float32)))
        assert out.numpy().tolist() == [[0.0, 0.0], [1.0, 1.0]]
        rs = np.empty(2, np.float32)
        dist.reduce_scatter_tensor(rs, np.arange(4, dtype=np.float32) * (rank + 1))
        assert rs.tolist() == [3.0 * 2 * rank, 3.0 * (2 * rank + 1)]
        o = np.empty((2, 3), np.int64)
        dist.all_to_all_single(o, np.arange(6, dtype=np.int64).reshape(2, 3) + 10 * rank)
        assert o[:, 0].tolist() == [3 * rank, 10 + 3 * rank]
        return True

    assert dist.spawn_threads(body, 2, timeout=30) == [True, True]


def test_argument_errors():
    def body(rank):
        with pytest.raises(ky.ArgumentError, match="2 tensors; the group has 3"):
            dist.all_gather([np.empty(1), np.empty(1)], np.ones(1))
        with pytest.raises(ky.ArgumentError, match="numpy arrays and ky.Tensors"):
            dist.all_reduce([1.0, 2.0])
        with pytest.raises(ky.ArgumentError, match="src=7 is not a rank"):
            dist.broadcast(np.ones(1), src=7)
        with pytest.raises(ky.UnsupportedError, match="complex"):
            dist.all_reduce(np.ones(2, np.complex64))
        with pytest.raises(ky.UnsupportedError, match="AVG of a bool"):
            dist.all_reduce(np.ones(2, np.bool_), op=dist.ReduceOp.AVG)
        with pytest.raises(ky.ArgumentError, match="read-only"):
            ro = np.ones(2)
            ro.flags.writeable = False
            dist.all_reduce(ro)
        dist.barrier()  # the group still works: argument errors are raised before any message

    dist.spawn_threads(body, 3, timeout=10)


def test_not_initialized():
    assert not dist.is_initialized()
    with pytest.raises(dist.CommError, match="not initialized"):
        dist.get_rank()


def test_forced_algorithm_and_logged_fallback(monkeypatch, caplog):
    monkeypatch.setenv("KAIYUAN_COMM_ALGO", "all_to_all:tree,all_reduce:hd")
    seen = []

    def body(rank):
        outs = [np.empty(1, np.float32) for _ in range(3)]
        dist.all_to_all(outs, [np.full(1, rank, np.float32)] * 3)
        dist.all_reduce(np.ones(3, np.float32))
        return [o.item() for o in outs]

    real = dist.api.Ctx.step

    def spy(self, *a, **k):
        seen.append((self.kind, self.algorithm))
        return real(self, *a, **k)

    monkeypatch.setattr(dist.api.Ctx, "step", spy)
    with caplog.at_level(logging.WARNING, logger="kaiyuan.comm"):
        assert dist.spawn_threads(body, 3, timeout=10) == [[0.0, 1.0, 2.0]] * 3
    assert ("all_to_all", "direct") in seen and ("all_reduce", "halving_doubling") in seen
    assert any("tree does not implement all_to_all" in r.message for r in caplog.records)


def test_unknown_algorithm(monkeypatch):
    monkeypatch.setenv("KAIYUAN_COMM_ALGO", "bogus")
    with pytest.raises(ky.UnsupportedError, match="unknown algorithm 'bogus'"):
        dist.spawn_threads(lambda r: dist.all_reduce(np.ones(1)), 2, timeout=5)
