"""Every collective × algorithm × dtype × size class on 1-8 ranks, ranks as threads (local)."""

from __future__ import annotations

import numpy as np
import pytest

import kaiyuan.comm as dist

from .checks import ALGOS, DTYPES, check_async_and_p2p, check_collectives, check_groups

WORLDS = (1, 2, 3, 4, 5, 8)


@pytest.mark.parametrize("world", WORLDS)
@pytest.mark.parametrize("algo", ALGOS)
def test_matrix(algo, world, monkeypatch):
    """Sizes 1, odd (37) and ~1 MB of float32 (smaller dtypes: fewer bytes); 4 KiB ring segments
    so the 1 MB case runs ring's pipeline over many segments. Hierarchical pretends hosts of 2."""
    monkeypatch.setenv("KAIYUAN_COMM_ALGO", algo)
    monkeypatch.setenv("KAIYUAN_COMM_SEGMENT", "4096")
    monkeypatch.setenv("KAIYUAN_COMM_LOCAL_SIZE", "2")

    def body(rank):
        n = check_collectives(dist, rank, world, [1, 37], DTYPES)
        n += check_collectives(dist, rank, world, [1 << 18], [np.float32])
        return n

    counts = dist.spawn_threads(body, world, timeout=30)
    assert counts[0] > 0 and len(set(counts)) == 1


@pytest.mark.parametrize("world", (2, 3, 4))
def test_ops(world, monkeypatch):
    """SUM, AVG, PROD, MIN, MAX of each dtype, with the algorithm the cost model picks."""
    monkeypatch.delenv("KAIYUAN_COMM_ALGO", raising=False)
    dist.spawn_threads(lambda r: check_collectives(dist, r, world, [5], DTYPES, ops=("SUM", "AVG", "PROD", "MIN",
                                                                                      "MAX")), world, timeout=30)


@pytest.mark.parametrize("algo", ALGOS)
def test_algorithms_agree_bitwise(algo, monkeypatch):
    """float32 sums of values of very different magnitudes: order-sensitive, yet every algorithm
    gives the bits of the rank-order fold (checked against one reference for all)."""
    monkeypatch.setenv("KAIYUAN_COMM_ALGO", algo)
    monkeypatch.setenv("KAIYUAN_COMM_LOCAL_SIZE", "3")
    scales = np.float32([1e8, 1.0, -1e8, 3.0, 1e-3, 7.0])

    def mine(rank):
        return (np.random.default_rng(rank).standard_normal(1000) * scales[rank]).astype(np.float32)

    def body(rank):
        x = mine(rank)
        dist.all_reduce(x)
        return x

    out = dist.spawn_threads(body, 6, timeout=30)
    ref = mine(0)
    for r in range(1, 6):
        ref = ref + mine(r)
    assert ref.dtype == np.float32 and ref.tobytes() != (mine(5) + mine(4) + mine(3) + mine(2) + mine(1) + mine(0)).tobytes()
    for x in out:
        assert x.tobytes() == ref.tobytes()


@pytest.mark.parametrize("world", (1, 2, 3, 4))
def test_async_p2p_groups(world):
    def body(rank):
        check_async_and_p2p(dist, rank, world)
        check_groups(dist, rank, world)

    dist.spawn_threads(body, world, timeout=30)
