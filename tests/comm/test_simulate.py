"""The supernode simulator: topology checks, hand-computed step times, contention, training steps, CLI."""

import json

import numpy as np
import pytest

from kaiyuan.comm import simulate
from kaiyuan.comm.cost import Topology, Transport, predict
from kaiyuan.comm.simulate import fattree, fullmesh, hierarchical, ring, switch, torus2d
from kaiyuan.comm.simulate.schedules import _all_pairs
from kaiyuan.runtime.errors import TopologyError
from kaiyuan.tools import cli

GB, M = 1e9, 1 << 24


def close(x, y):
    return x == pytest.approx(y, rel=1e-9)


@pytest.mark.parametrize("make", [
    lambda: fullmesh(0), lambda: fullmesh(4, link_GBps=0), lambda: switch(8, -1.0), lambda: ring(4, latency_us=-1),
    lambda: torus2d(0, 3), lambda: fattree(8, oversubscription=0.5), lambda: hierarchical(3, switch(2)),
    lambda: switch(2.5), lambda: switch(True), lambda: fullmesh(4, port_GBps=float("nan")),
    lambda: simulate.parse("hypercube:8"), lambda: simulate.parse("torus2d:3"), lambda: simulate.parse("switch:x"),
    lambda: simulate.parse("switch:8:fast"), lambda: simulate.collective(Topology.local_host(2), "all_reduce", 8),
])
def test_bad_topologies_raise_with_a_hint(make):
    with pytest.raises(TopologyError) as e:
        make()
    assert e.value.code == "KY-E810" and e.value.hint


def test_switch_ring_all_reduce_closed_form():
    p, bw, lat, msg, red = 8, 100.0, 2.0, 0.5, 400.0
    t = switch(p, bw, lat, reduce_GBps=red, message_us=msg)
    c = M / p  # each step: one message, two half-latency links, c over every port, c reduced
    step = msg * 1e-6 + lat * 1e-6 + c / (bw * GB)
    assert close(simulate.collective(t, "all_reduce", M, "ring").time, 2 * (p - 1) * step + (p - 1) * c / (red * GB))


def test_fullmesh_direct_all_to_all_uses_every_link_at_once():
    p, bw, lat = 16, 50.0, 1.0
    t = fullmesh(p, bw, lat, message_us=0.25)
    expected = (p - 1) * 0.25e-6 + lat * 1e-6 + (M / p) / (bw * GB)  # each pair's block on its own link
    assert close(simulate.collective(t, "all_to_all", M, "direct").time, expected)
    capped = fullmesh(p, bw, lat, port_GBps=bw, message_us=0.25)  # the port now carries all p-1 blocks
    assert close(simulate.collective(capped, "all_to_all", M, "direct").time,
                 (p - 1) * 0.25e-6 + lat * 1e-6 + (p - 1) * (M / p) / (bw * GB))


def test_simulator_matches_the_cost_model_where_both_apply():
    # A port-capped full mesh without per-message cost is the cost model's multiport transport.
    p, bw, lat, red = 8, 40.0, 3.0, 200.0
    sim = fullmesh(p, bw, lat, port_GBps=bw, reduce_GBps=red, message_us=0.0)
    tp = Topology.local_host(p, Transport("x", lat * 1e-6, 1 / (bw * GB), 1 / (red * GB), multiport=True),
                             schedules="textbook")
    for coll in ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all"):
        r = simulate.collective(sim, coll, M)
        for algo, t in r.times.items():
            assert close(t, predict(coll, algo, M, tp)), (coll, algo)


def test_contention_on_a_one_way_ring():
    # all pairs on a 4-ring, one direction: flows of 1, 2 and 3 hops; every link carries 1+2+3 blocks
    t = ring(4, 10.0, 1.0, bidirectional=False, message_us=0.0)
    step = _all_pairs(4, 1000.0)[0]
    assert close(t.step_time(step), 3e-6 + 6 * 1000.0 / 10e9)
    both = ring(4, 10.0, 1.0, message_us=0.0)  # both ways: at most 2 hops, links carry 1+1 (+ ties forward)
    assert both.step_time(step) < t.step_time(step)


def test_torus_snake_order_is_one_hop_per_ring_step():
    t = torus2d(4, 6, 100.0, 1.0)
    order = t.order()
    assert sorted(order) == list(range(24))
    fi, li = t.incidence(order, np.roll(order, -1))
    assert (np.bincount(fi, minlength=24) == 1).all()
    fi, li = t.incidence(np.array([0]), np.array([2 + 4 * 4]))  # (0,0) -> (2,4): 2 x-hops, 2 y-hops back round
    assert len(li) == 4 and (li[:2] < 24).all() and (li[2:] >= 3 * 24).all()  # +x links, then -y links


def test_fattree_oversubscription_slows_cross_leaf_traffic():
    full, half = fattree(32, 50.0, 5.0, leaf=8), fattree(32, 50.0, 5.0, leaf=8, oversubscription=4)
    assert simulate.collective(half, "all_to_all", M, "direct").time > simulate.collective(full, "all_to_all", M, "direct").time
    ring_time = simulate.collective(half, "all_reduce", M, "ring").time  # one flow per leaf crossing: unaffected
    assert close(ring_time, simulate.collective(full, "all_reduce", M, "ring").time)


def test_hierarchical_routes_inside_the_host_then_along_the_rail():
    inner, outer = switch(4, 100.0, 1.0), fattree(3, 10.0, 5.0)
    t = hierarchical(inner, outer)
    assert t.n == 12 and t.grid() == (3, 4)
    fi, li = t.incidence(np.array([1]), np.array([4 * 2 + 3]))  # host 0 local 1 -> host 2 local 3
    inner_links, rail = li[li < 3 * inner.nlinks], li[li >= 3 * inner.nlinks]
    assert len(inner_links) == 2 and len(rail) == 2  # switch up/down in host 0, then fat-tree up/down
    assert ((rail - 3 * inner.nlinks) // outer.nlinks == 3).all()  # on rail 3, the destination's local index


def test_issue_comparison():
    topos = simulate.comparison()
    assert [t.n for t in topos.values()] == [384, 72, 384]
    servers = topos["48 servers x 8 on a network"]
    ar = simulate.collective(servers, "all_reduce", 1 << 30)
    assert ar.best == "hierarchical" and ar.phases["hierarchical"][1].startswith("outer:all_reduce")
    assert ar.times["hierarchical"] < ar.times["ring"] / 2
    moe = simulate.moe_all_to_all_bytes()
    assert moe == 4096 * 8 * 7168 * 2
    a2a = {k: simulate.collective(t, "all_to_all", moe).time for k, t in topos.items()}
    assert a2a["72 on a switch (NVL72)"] < a2a["384 full mesh (supernode)"] < a2a["48 servers x 8 on a network"]
    tiny = simulate.collective(topos["384 full mesh (supernode)"], "all_reduce", 1024)
    assert tiny.best in ("halving_doubling", "tree")


def test_ring_is_best_for_large_all_reduce_on_a_ring():
    r = simulate.collective(ring(16, 100.0, 1.0), "all_reduce", 1 << 28)
    assert r.best == "ring" and r.times["ring"] < r.times["tree"]
    assert 0 < r.busbw < 2 * 100e9  # two directions of 100 GB/s at most


def test_data_parallel_step():
    t = switch(8, 450.0, 1.0)
    no = simulate.data_parallel(t, 1e9, bucket_MB=25, overlap=False, tokens_per_device=4096, device_TFLOPs=100)
    yes = simulate.data_parallel(t, 1e9, bucket_MB=25, overlap=True, tokens_per_device=4096, device_TFLOPs=100)
    assert close(no.compute_s, 6 * 1e9 * 4096 / 100e12) and close(no.exposed_s, no.comm_s)
    assert no.details["buckets"] == int(np.ceil(2e9 / (25 * 2**20)))
    assert close(yes.comm_s, no.comm_s) and 0 <= yes.exposed_s < no.exposed_s and yes.step_s < no.step_s
    one = simulate.data_parallel(t, 1e9, bucket_MB=None)
    assert one.details["buckets"] == 1 and close(one.comm_s, simulate.collective(t, "all_reduce", 2e9).time)
    with pytest.raises(TopologyError):
        simulate.data_parallel(t, -5)


def test_tensor_parallel_step():
    assert simulate.gpt_shape(175e9) == (96, 12288)
    t = switch(8, 450.0, 1.0)
    r = simulate.tensor_parallel(t, hidden=4096, layers=32, seq=2048, batch=2)
    act = 2 * 2048 * 4096 * 2
    assert close(r.comm_s, 32 * 4 * simulate.collective(t, "all_reduce", act).time)
    sp = simulate.tensor_parallel(t, hidden=4096, layers=32, seq=2048, batch=2, sequence_parallel=True)
    assert sp.details["algorithms"].keys() == {"all_gather", "reduce_scatter"}
    with pytest.raises(TopologyError):
        simulate.tensor_parallel(t)


def test_cli_default_table(capsys):
    assert cli.main(["comm-sim"]) == 0
    out = capsys.readouterr().out
    for label in ("384 full mesh", "72 on a switch", "48 servers x 8"):
        assert label in out
    assert "all_to_all" in out and "4096 tokens x top-8" in out and "*" in out


def test_cli_json_and_errors(capsys):
    assert cli.main(["comm-sim", "--topology", "fullmesh:16", "--collective", "all_reduce", "--size", "1MiB",
                     "--size", "4KB", "--dp", "1B", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["nbytes"] for c in data["collectives"]] == [2**20, 4000]
    assert data["steps"][0]["kind"] == "data_parallel" and data["steps"][0]["gradient_bytes"] == 2e9
    assert cli.main(["comm-sim", "--topology", "mesh:4"]) == 2
    assert "KY-E810" in capsys.readouterr().err
    assert cli.main(["comm-sim", "--size", "lots"]) == 2
