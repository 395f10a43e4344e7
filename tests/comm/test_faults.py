"""Timeouts, dead ranks and mismatches end in CommError naming the ranks — never a hang.
Ranks are threads here (local); tests/comm/test_shm.py has the process versions."""

from __future__ import annotations

import datetime
import time

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.comm as dist


def _catch(fn):
    """Run fn on the rank, returning its KaiyuanError instead of raising it."""
    def body(rank):
        try:
            return fn(rank)
        except ky.KaiyuanError as e:
            return e
    return body


def test_rank_that_never_arrives_is_named():
    def fn(rank):
        if rank == 2:
            time.sleep(1.0)  # busy elsewhere, never calls all_reduce
            return "absent"
        dist.all_reduce(np.ones(8, np.float32))

    t = time.monotonic()
    out = dist.spawn_threads(_catch(fn), 4, timeout=datetime.timedelta(seconds=0.4))
    assert time.monotonic() - t < 5
    for e in (out[0], out[1], out[3]):
        assert isinstance(e, dist.CommError) and e.code == "KY-E800"
        assert e.collective == "all_reduce" and 2 in e.ranks
        assert "rank 2" in e.message and ("never arrived" in e.message or "not arrived" in e.message)


def test_rank_that_fails_stops_the_others_at_once():
    def fn(rank):
        if rank == 1:
            raise ValueError("boom")
        dist.all_reduce(np.ones(8, np.float32))

    t = time.monotonic()
    with pytest.raises(ValueError, match="boom"):  # spawn_threads re-raises the root cause
        dist.spawn_threads(fn, 3, timeout=30)
    assert time.monotonic() - t < 10  # far below the 30 s timeout


def test_others_see_the_failure():
    def fn(rank):
        if rank == 1:
            dist.state.current().transport.mark_failed("raised ValueError: boom")
            return "failed"
        dist.all_reduce(np.ones(8, np.float32))

    out = dist.spawn_threads(_catch(fn), 3, timeout=30)
    for e in (out[0], out[2]):
        assert isinstance(e, dist.CommError) and e.reason == "dead" and "boom" in e.message


@pytest.mark.parametrize("bad", ["count", "dtype", "kind", "op"])
def test_mismatch_is_reported(bad):
    def fn(rank):
        x = np.ones(8, np.float32)
        if rank == 1 and bad == "count":
            x = np.ones(9, np.float32)
        if rank == 1 and bad == "dtype":
            x = np.ones(8, np.float64)
        if rank == 1 and bad == "kind":
            dist.broadcast(x, src=0)
        else:
            dist.all_reduce(x, op=dist.ReduceOp.MAX if rank == 1 and bad == "op" else dist.ReduceOp.SUM)

    out = dist.spawn_threads(_catch(fn), 3, timeout=5)
    assert all(isinstance(e, dist.CommError) for e in out)
    mism = [e for e in out if isinstance(e, dist.CommMismatchError)]
    assert mism and all(e.code == "KY-E801" for e in mism)
    text = " ".join(e.message for e in mism)
    expect = {"count": "of 9 float32", "dtype": "float64", "kind": "broadcast", "op": "op=MAX"}[bad]
    assert expect in text and "rank 1" in text


def test_group_is_unusable_after_an_error():
    def fn(rank):
        try:
            dist.all_reduce(np.ones(rank + 1, np.float32))
        except dist.CommError:
            pass
        dist.all_reduce(np.ones(1, np.float32))

    out = dist.spawn_threads(_catch(fn), 2, timeout=5)
    assert all(isinstance(e, dist.CommError) for e in out)


def test_async_wait_timeout():
    def fn(rank):
        if rank == 1:
            time.sleep(0.6)
        w = dist.all_reduce(np.ones(4, np.float32), async_op=True)
        if rank == 0:
            with pytest.raises(dist.CommError, match="Work.wait"):
                w.wait(timeout=0.05)
            assert not w.is_completed()
        w.wait()
        return w.is_completed()

    assert dist.spawn_threads(fn, 2, timeout=10) == [True, True]


def test_init_timeout_names_missing_ranks():
    with pytest.raises(dist.CommError, match=r"rank\(s\) \[1, 2\]"):
        dist.init_process_group("local", init_method="local://lonely", rank=0, world_size=3, timeout=0.2)
    assert not dist.is_initialized()
