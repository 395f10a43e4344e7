"""The arena planner (kaiyuan.graph.plan): lifetimes, placement, in-place reuse."""

import itertools

import numpy as np
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


def _chain_session(nodes, shape=(4, 4)):
    import kaiyuan as ky
    from kaiyuan.graph.passes import DEFAULT_PASSES
    from onnx import TensorProto as T, helper

    graph = helper.make_graph([helper.make_node(*n[:3], name=n[2][0], **(n[3] if len(n) > 3 else {}))
                               for n in nodes], "g",
                              [helper.make_tensor_value_info("x", T.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", T.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return ky.InferenceSession(model, passes=list(DEFAULT_PASSES))  # no fusion: one step per node


def test_elementwise_steps_write_over_their_dying_inputs():
    sess = _chain_session([("Relu", ["x"], ["a"]), ("Sigmoid", ["a"], ["b"]), ("Neg", ["b"], ["c"]),
                           ("Exp", ["c"], ["y"])])
    x = np.linspace(-2, 2, 16, dtype=np.float32).reshape(4, 4)
    [y] = sess.run(None, {"x": x})
    np.testing.assert_allclose(y, np.exp(-1 / (1 + np.exp(-np.maximum(x, 0)))), rtol=1e-6)
    plan = sess.plan_for({"x": (4, 4)})
    shared = [b.members for b in plan.arena_plan.blocks if len(b.members) > 1]
    assert len(shared) == 1 and len(shared[0]) == 5  # x, a, b, c and y in one block
    assert plan.arena_plan.size == 64


def test_no_in_place_when_another_input_reads_the_bytes_transposed():
    # y = a + aᵀ: writing y over a would let later elements read an already-overwritten aᵀ
    sess = _chain_session([("Relu", ["x"], ["a"]), ("Transpose", ["a"], ["t"], {"perm": [1, 0]}),
                           ("Add", ["a", "t"], ["y"])], shape=(256, 256))  # many programs
    x = np.arange(256 * 256, dtype=np.float32).reshape(256, 256)
    [y] = sess.run(None, {"x": x})
    np.testing.assert_array_equal(y, x + x.T)


def _const(name, values):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.array(values, np.int64), name)


def test_slices_and_reshapes_of_slices_are_views_only_where_the_strides_allow():
    """A Slice with constant bounds is a strided view (no step); a Reshape of that view is a view
    when numpy can reshape the strides without a copy (splitting the last axis), and a copy step
    when it cannot (flattening rows that are not adjacent)."""
    import kaiyuan as ky
    from kaiyuan.graph.passes import DEFAULT_PASSES
    from onnx import TensorProto as T, helper

    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Slice", ["a", "s", "e", "ax"], ["c"]),           # columns 2..8 of 10
             helper.make_node("Reshape", ["c", "split"], ["v"]),                # (4, 6) -> (4, 2, 3): a view
             helper.make_node("Reshape", ["c", "flat"], ["f"]),                 # (4, 6) -> (24,): a copy
             helper.make_node("Neg", ["v"], ["y"]), helper.make_node("Neg", ["f"], ["z"])]
    inits = [_const("s", [2]), _const("e", [8]), _const("ax", [-1]), _const("split", [4, 2, 3]), _const("flat", [24])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [4, 10])],
                              [helper.make_tensor_value_info(n, T.FLOAT, None) for n in "yz"], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = ky.InferenceSession(model, passes=list(DEFAULT_PASSES))
    x = np.arange(-20, 20, dtype=np.float32).reshape(4, 10)
    y, z = sess.run(None, {"x": x})
    c = np.maximum(x, 0)[:, 2:8]
    np.testing.assert_array_equal(y, -c.reshape(4, 2, 3))
    np.testing.assert_array_equal(z, -c.reshape(24))
    kinds = [s.op.op_type for s in sess.plan_for({"x": (4, 10)}).steps]
    assert kinds == ["Relu", "Reshape", "Neg", "Neg"]    # the slice and the first reshape cost nothing
