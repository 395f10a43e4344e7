"""The alpha-beta-gamma cost model: hand-computed times, sanity of its choices, calibration file."""

import numpy as np
import pytest

from kaiyuan.comm import cost
from kaiyuan.comm.cost import Topology, Transport, algorithms, choose_algorithm, predict
from kaiyuan.comm.simulate.schedules import COLLECTIVES, flat_schedule
from kaiyuan.runtime.errors import TopologyError, UnsupportedError

A, B, G = 1e-5, 1e-9, 2e-9  # alpha s, beta s/B, gamma s/B: round numbers for hand computation
SHM = Transport("t", A, B, G, multiport=True, shared_memory=True)
P2P = Transport("p", A, B, G)  # one alpha per message, no shared buffers (MPI-like)
M = 1 << 20


def close(x, y):
    return x == pytest.approx(y, rel=1e-12)


@pytest.mark.parametrize("algo,expected", [
    ("ring", 6 * A + 1.5 * M * B + 0.75 * M * G),              # 2(p-1) steps of m/p
    ("halving_doubling", 4 * A + 1.5 * M * B + 0.75 * M * G),  # 2 log p steps, same bytes
    ("tree", 4 * A + 4 * M * B + 2 * M * G),                   # binomial reduce + broadcast of m
    ("direct", 2 * A + 1.5 * M * B + 0.75 * M * G),            # two rounds to all peers at once
])
def test_textbook_all_reduce_closed_forms_on_shared_memory(algo, expected):
    assert close(predict("all_reduce", algo, M, Topology.local_host(4, SHM, schedules="textbook")), expected)


@pytest.mark.parametrize("algo,expected", [
    # one 1 MiB segment: the chain 0->1->2->3 folds (3 rounds), then 3->2->1->0 brings it back
    ("ring", 6 * A + 6 * M * B + 3 * M * G),
    # raw halving: m/2 per round (1, then 2 contributions of a halving slice); owners fold 3 slices of m/4
    ("halving_doubling", 4 * A + (0.5 + 0.5 + 0.25 + 0.5) * M * B + 0.75 * M * G),
    # binomial gather of raw blocks (m, m, then 2m), rank 0 folds 3m, binomial broadcast of m
    ("tree", 4 * A + 5 * M * B + 3 * M * G),
    ("direct", 2 * A + 1.5 * M * B + 0.75 * M * G),
])
def test_runtime_all_reduce_closed_forms(algo, expected, monkeypatch):
    monkeypatch.setenv("KAIYUAN_COMM_SEGMENT", str(M))
    assert close(predict("all_reduce", algo, M, Topology.local_host(4, SHM)), expected)


def test_runtime_ring_pipelines_its_segments(monkeypatch):
    monkeypatch.setenv("KAIYUAN_COMM_SEGMENT", str(M // 64))
    t = Topology.local_host(4, SHM)
    s = M / 64  # 64 segments: 64 + 2*4 - 2 = 70 rounds; at most 2 segments out of a rank per round
    got = predict("all_reduce", "ring", M, t)
    assert 69 * (A + s * B) < got - 64 * s * G <= 70 * (A + 2 * s * B)


def test_point_to_point_transport_pays_alpha_per_message():
    t = Topology.local_host(4, P2P)
    assert close(predict("all_reduce", "direct", M, t), 6 * A + 1.5 * M * B + 0.75 * M * G)
    assert close(predict("all_gather", "direct", M, t), 3 * A + 3 * M * B)  # no shared buffer: 3 copies out
    assert close(predict("all_gather", "ring", M, t), 3 * (A + M * B))


def test_halving_doubling_folds_a_non_power_of_two():
    # p = 3: rank 2 hands m to rank 0 (alpha + m beta + m gamma), ranks 0,1 run p=2, rank 2 gets m back
    expected = (A + M * B + M * G) + (A + M / 2 * B + M / 2 * G) + (A + M / 2 * B) + (A + M * B)
    t = Topology.local_host(3, SHM, schedules="textbook")
    assert close(predict("all_reduce", "halving_doubling", M, t), expected)
    # the runtime's raw version: rank 0 sends both contributions' halves (m), folds 3 of m/2 at the end
    expected = (A + M * B) + (A + M * B + M * G) + (A + M / 2 * B) + (A + M * B)
    assert close(predict("all_reduce", "halving_doubling", M, Topology.local_host(3, SHM)), expected)


def test_two_hosts_price_the_slower_side_of_each_step():
    inter = Transport("net", 5 * A, 10 * B, G)
    t = Topology.hosts([2, 2], intra=SHM, inter=inter)
    step = max(A + M * B, 5 * A + M * 10 * B)  # ring all_gather: each step one flow per host crosses
    assert close(predict("all_gather", "ring", M, t), 3 * step)


def test_every_schedule_moves_at_least_the_data_it_must():
    m = 1200.0
    for p in range(2, 10):
        for algo in ("ring", "halving_doubling", "direct"):
            got = np.bincount(np.concatenate([np.repeat(s.dst, s.repeat) for s in flat_schedule("all_gather", algo, p, m)]),
                              weights=np.concatenate([np.repeat(s.nbytes, s.repeat) for s in flat_schedule("all_gather", algo, p, m)]),
                              minlength=p)
            assert np.allclose(got, (p - 1) * m), (p, algo)  # every rank receives every other block once
        for coll in COLLECTIVES:
            for algo in cost.FLAT[coll]:
                steps = flat_schedule(coll, algo, p, m)
                received = np.zeros(p)
                for s in steps:
                    assert (s.src != s.dst).all() and (s.nbytes >= 0).all()
                    received += np.bincount(s.dst, weights=s.nbytes, minlength=p) * s.repeat
                # what a rank must receive whatever the algorithm (data may arrive pre-reduced)
                need = {"all_reduce": m, "reduce_scatter": m / p, "all_to_all": (p - 1) / p * m,
                        "all_gather": (p - 1) * m, "broadcast": m, "reduce": m}[coll]
                who = received[:1] if coll == "reduce" else received[1:] if coll == "broadcast" else received
                assert (who >= need - 1e-9).all(), (coll, algo, p, received)


def test_predictions_grow_with_message_size_and_world_size():
    for coll in COLLECTIVES:
        t = Topology.local_host(6, "shm")
        for algo in algorithms(coll, t):
            times = [predict(coll, algo, n, t) for n in (0, 8, 4096, 1 << 20, 1 << 26)]
            assert times == sorted(times) and times[-1] > times[0], (coll, algo)
    ring = [predict("all_reduce", "ring", 1 << 20, Topology.local_host(p, "mpi")) for p in (2, 3, 4, 8, 16)]
    assert ring == sorted(ring)


def test_latency_bound_and_bandwidth_bound_choices():
    t = Topology.local_host(8, "mpi", schedules="textbook")  # point-to-point: alpha per message
    assert choose_algorithm("all_reduce", 8, 8, t) in ("halving_doubling", "tree")
    assert predict("all_reduce", "ring", 1 << 28, t) < predict("all_reduce", "tree", 1 << 28, t)
    assert choose_algorithm("all_reduce", 1 << 28, 8, t) in ("ring", "halving_doubling")
    assert choose_algorithm("broadcast", 8, 8, t) == "tree"
    rt = Topology.local_host(8, "shm")  # the runtime's own algorithms on shared memory
    assert choose_algorithm("all_reduce", 8, 8, rt, candidates=("ring", "halving_doubling", "tree")) != "ring"
    assert predict("all_reduce", "ring", 1 << 28, rt) < predict("all_reduce", "tree", 1 << 28, rt)


def test_hierarchical_wins_across_hosts_with_a_slow_network():
    fast = Transport("nvl", 5e-6, 1 / 50e9, 1 / 20e9, multiport=True, shared_memory=True)
    slow = Transport("net", 20e-6, 1 / 1.25e9, 1 / 20e9)
    t = Topology.hosts([4, 4, 4, 4], intra=fast, inter=slow, schedules="textbook")
    assert "hierarchical" in algorithms("all_reduce", t)
    for n in (1 << 16, 1 << 20, 1 << 28):
        assert choose_algorithm("all_reduce", n, 16, t) == "hierarchical", n
    rt = Topology.hosts([4, 4, 4, 4], intra=fast, inter=slow)  # the runtime's version: a chain across hosts
    for n in (1 << 16, 1 << 20):
        assert choose_algorithm("all_reduce", n, 16, rt) == "hierarchical", n
    assert "hierarchical" not in algorithms("all_reduce", Topology.hosts([4, 3]))  # needs equal hosts


def test_choose_checks_its_arguments():
    with pytest.raises(TopologyError) as e:
        choose_algorithm("all_reduce", 1024, 4, Topology.local_host(8))
    assert "8 ranks" in str(e.value) and e.value.hint
    with pytest.raises(UnsupportedError):
        choose_algorithm("all_sum", 1024, 4)
    with pytest.raises(TopologyError):
        Topology.hosts([])
    with pytest.raises(TopologyError):
        Topology.local_host(4, "carrier-pigeon")
    assert choose_algorithm("all_reduce", 1 << 24, 4, candidates=("ring", "tree")) == "ring"
    assert choose_algorithm("all_reduce", 100, 1) in algorithms("all_reduce", Topology.local_host(1))


def test_calibration_is_stored_and_used(tmp_path, monkeypatch):
    monkeypatch.setenv("KAIYUAN_CACHE_DIR", str(tmp_path))
    cost._calibrated.cache_clear()
    try:
        assert cost.transport("shm").alpha == cost.DEFAULTS[("shm", "intra")].alpha
        path = cost.save_calibration("shm", "intra", alpha=123e-6, beta=1 / 7e9)
        assert path.parent.parent == tmp_path
        t = cost.transport("shm")
        assert t.alpha == 123e-6 and t.beta == 1 / 7e9 and t.gamma == cost.DEFAULTS[("shm", "intra")].gamma
        assert cost.transport("mpi").alpha == cost.DEFAULTS[("mpi", "intra")].alpha
    finally:
        monkeypatch.undo()
        cost._calibrated.cache_clear()
        cost._predict.cache_clear()
        cost._choose.cache_clear()
