"""The arena planner (kaiyuan.graph.plan): lifetimes, placement, in-place reuse."""

import itertools

import pytest

from kaiyuan.graph.plan import ALIGN, plan_arena


def overlaps(a, b):
    return a[0] < b[0] + b[1] and b[0] < a[0] + a[1]


def check_no_conflict(tensors, reads, plan):
    """No two tensors whose lifetimes overlap share a byte."""
    for (ka, (na, sa)), (kb, (nb, sb)) in itertools.combinations(tensors.items(), 2):
        ea, eb = max(reads.get(ka, sa), sa), max(reads.get(kb, sb), sb)
        if sa <= eb and sb <= ea:
            assert not overlaps((plan.offsets[ka], na), (plan.offsets[kb], nb)), (ka, kb)


def test_chain_reuses_memory():
    # a -> b -> c -> d: each tensor dies when the next is written, so two blocks suffice
    tensors = {k: (1000, i) for i, k in enumerate("abcd")}
    reads = {"a": 1, "b": 2, "c": 3, "d": 4}
    plan = plan_arena(tensors, reads)
    check_no_conflict(tensors, reads, plan)
    assert plan.total == 4000
    assert plan.size == 2 * 1024  # two 64-byte-aligned blocks of 1000 bytes
    assert all(off % ALIGN == 0 for off in plan.offsets.values())


def test_long_lived_tensor_keeps_its_block():
    tensors = {"x": (512, 0), "t1": (256, 1), "t2": (256, 2), "y": (512, 3)}
    reads = {"x": 3, "t1": 2, "t2": 3}
    plan = plan_arena(tensors, reads)
    check_no_conflict(tensors, reads, plan)
    assert plan.size < plan.total


def test_inplace_shares_the_dying_input():
    tensors = {"a": (4096, 0), "b": (4096, 1), "c": (4096, 2)}
    reads = {"a": 1, "b": 2, "c": 3}
    plan = plan_arena(tensors, reads, inplace={"b": "a", "c": "b"})
    assert plan.offsets["a"] == plan.offsets["b"] == plan.offsets["c"]
    assert plan.size == 4096


def test_inplace_refused_when_input_lives_on():
    tensors = {"a": (4096, 0), "b": (4096, 1)}
    reads = {"a": 2, "b": 2}  # a is read again after b is written
    plan = plan_arena(tensors, reads, inplace={"b": "a"})
    check_no_conflict(tensors, reads, plan)
    assert plan.offsets["a"] != plan.offsets["b"]


@pytest.mark.parametrize("seed", range(20))
def test_random_lifetimes_never_conflict(seed):
    import random

    rng = random.Random(seed)
    tensors, reads = {}, {}
    for i in range(40):
        start = rng.randrange(30)
        tensors[i] = (rng.choice([0, 1, 63, 64, 100, 4096, 10000]), start)
        reads[i] = start + rng.randrange(10)
    plan = plan_arena(tensors, reads)
    check_no_conflict(tensors, reads, plan)
    assert plan.size <= sum(max(n, 1) + ALIGN for n, _ in tensors.values())
    assert "saved by reuse" in plan.summary()
