"""@ky.autotune: shape-class keys, the per-machine disk cache, pruning, failing configs, the time
budget, KAIYUAN_AUTOTUNE=0, and reporting. Kernels run on `interp` (tiny and fast to build);
most tests replace the timing with a spy that returns fixed times, so nothing depends on speed."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl
from kaiyuan import ArgumentError
from kaiyuan.compiler import autotune as autotune_mod


@ky.jit
def scale(x_ptr, out_ptr, n, factor, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    m = offs < n
    kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=m) * factor, mask=m)


GRID = lambda meta: ((meta["n"] + meta["BLOCK"] - 1) // meta["BLOCK"],)  # noqa: E731
FAKE_SECONDS = {16: 3.0, 32: 1.0, 64: 2.0}  # BLOCK 32 "wins"


def tuned(blocks=(16, 32, 64), **kw):
    """A new Autotuner over a new JITFunction of the same kernel (as a new process would make)."""
    kw.setdefault("warmup", 0)
    kw.setdefault("rep", 1)
    return ky.autotune(configs=[ky.Config({"BLOCK": b}) for b in blocks], key=kw.pop("key", ["n"]), **kw)(
        ky.jit(scale.fn))


@pytest.fixture(autouse=True)
def tuning_on(monkeypatch):
    """These tests are about tuning: a KAIYUAN_AUTOTUNE=0 in the environment (CI) must not leak in."""
    monkeypatch.delenv("KAIYUAN_AUTOTUNE", raising=False)


@pytest.fixture
def interp():
    with ky.device("interp"):
        yield


@pytest.fixture
def timed(monkeypatch):
    """Replace timing by fixed times; the list collects the BLOCK of every config timed."""
    calls = []

    def fake(self, cfg, args, kwargs, grid):
        calls.append(cfg.kwargs["BLOCK"])
        return lambda: FAKE_SECONDS.get(cfg.kwargs["BLOCK"], 5.0)

    monkeypatch.setattr(autotune_mod.Autotuner, "_warm", fake)
    return calls


def launch(t, n=64, factor=2.0, dtype=np.float32, size=None):
    x = np.arange(size or n, dtype=dtype)
    out = np.zeros_like(x)
    t[GRID](x, out, n, factor)
    np.testing.assert_allclose(out[:n], x[:n] * factor)
    return out


def table(cache):
    files = list((cache / "autotune").glob("*.json"))
    assert len(files) == 1, files
    return files[0], json.loads(files[0].read_text())


# ------------------------------------------------------------------------------- persistence


def test_picks_the_fastest_and_persists_it(interp, private_cache, timed, monkeypatch):
    t1 = tuned()
    launch(t1)
    assert sorted(timed) == [16, 32, 64]
    assert t1.best_config.kwargs == {"BLOCK": 32}
    path, data = table(private_cache)
    assert path.parent == private_cache / "autotune"
    (entry,) = data["entries"].values()
    assert entry["config"]["kwargs"] == {"BLOCK": 32}
    assert entry["machine"]["device"] == "interp"
    assert entry["machine"]["kaiyuan"] == ky.__version__

    # a second Autotuner (a new process) reads the winner from disk: no timing at all
    timed.clear()
    monkeypatch.setattr(autotune_mod.Autotuner, "_tune", lambda *a: pytest.fail("tuned again"))
    t2 = tuned()
    launch(t2, factor=3.0)
    assert timed == []
    assert t2.best_config.kwargs == {"BLOCK": 32}


def test_a_new_key_is_tuned_again(interp, timed):
    t = tuned()
    launch(t, n=64)
    launch(t, n=64, factor=4.0)
    assert len(timed) == 3
    launch(t, n=48, size=64)
    assert len(timed) == 6
    assert len(t.best) == 2


def test_machine_fingerprint_mismatch_retunes(interp, private_cache, timed, monkeypatch):
    launch(tuned())
    assert len(timed) == 3
    real = autotune_mod.machine_fingerprint
    monkeypatch.setattr(autotune_mod, "machine_fingerprint", lambda dev: {**real(dev), "cpu": "Another CPU 9000"})
    launch(tuned())
    assert len(timed) == 6  # the other machine's result was not trusted
    _, data = table(private_cache)
    assert len(data["entries"]) == 2  # both machines' results kept


def test_copied_entry_with_another_machine_is_not_trusted(interp, private_cache, timed):
    launch(tuned())
    path, data = table(private_cache)
    for entry in data["entries"].values():  # same key, but the recorded machine differs
        entry["machine"]["cores"] = 4096
        entry["config"]["kwargs"] = {"BLOCK": 64}
    path.write_text(json.dumps(data))
    t = tuned()
    launch(t)
    assert len(timed) == 6
    assert t.best_config.kwargs == {"BLOCK": 32}


def test_fingerprint_names_the_machine_and_device():
    fp = autotune_mod.machine_fingerprint(ky.get_device("cpu"))
    assert fp["cpu"] and fp["cores"] >= 1 and fp["kaiyuan"] == ky.__version__
    assert fp["properties"] == json.loads(json.dumps(ky.get_device("cpu").properties, default=str))
    assert fp != autotune_mod.machine_fingerprint(ky.get_device("interp"))


@pytest.mark.parametrize("garbage", ["{not json", "[]", '{"format": 2, "entries": 7}', ""])
def test_corrupt_file_is_ignored_and_rewritten(interp, private_cache, timed, garbage, caplog):
    launch(tuned())
    path, _ = table(private_cache)
    path.write_text(garbage)
    with caplog.at_level(logging.WARNING, logger="kaiyuan.autotune"):
        t = tuned()
        launch(t)
    assert len(timed) == 6
    assert t.best_config.kwargs == {"BLOCK": 32}
    _, data = table(private_cache)  # valid again
    assert len(data["entries"]) == 1
    if garbage:
        assert "corrupt" in caplog.text


def test_writes_leave_no_temporary_files(interp, private_cache, timed):
    t = tuned()
    launch(t, n=64)
    launch(t, n=32, size=64)
    assert [p.suffix for p in (private_cache / "autotune").iterdir()] == [".json"]


# -------------------------------------------------------------------------------- shape classes


def test_pow2_buckets_share_an_entry(interp, timed):
    t = tuned(key_bucket="pow2")
    launch(t, n=1000, size=1024)
    launch(t, n=1024)
    assert len(timed) == 3 and len(t.best) == 1
    launch(t, n=1025, size=1025)
    assert len(timed) == 6 and len(t.best) == 2


def test_exact_keys_do_not_share(interp, timed):
    t = tuned()  # exact is the default, as in Triton
    launch(t, n=1000, size=1024)
    launch(t, n=1024)
    assert len(timed) == 6 and len(t.best) == 2


def test_a_custom_bucket_function(interp, timed):
    t = tuned(key_bucket=lambda n: n // 100)
    launch(t, n=1000, size=1024)
    launch(t, n=1024)
    assert len(timed) == 3


def test_unknown_bucket_is_an_error():
    with pytest.raises(ArgumentError, match="key_bucket"):
        tuned(key_bucket="log10")


def test_key_includes_argument_dtypes(interp, timed):
    t = tuned()
    launch(t, dtype=np.float32)
    launch(t, dtype=np.float64)
    assert len(timed) == 6
    assert any("float64" in k for k in t.best) and any("float32" in k for k in t.best)


def test_key_includes_the_device(private_cache, timed):
    t = tuned()
    for name in ("interp", "cpu"):
        with ky.device(name):
            launch(t)
    assert len(timed) == 6
    assert sorted(k.split("|")[0] for k in t.best) == ["cpu", "interp"]
    _, data = table(private_cache)
    assert sorted(e["machine"]["device"] for e in data["entries"].values()) == ["cpu", "interp"]


def test_best_config_for_each_key(interp, timed):
    t = tuned()
    x = np.zeros(64, np.float32)
    assert t.best_config_for(x, x, 64, 1.0) is None
    launch(t)
    assert t.best_config_for(x, x, 64, 1.0).kwargs == {"BLOCK": 32}
    assert t.best_config_for(x, x, 63, 1.0) is None


# ------------------------------------------------------------------------------------- pruning


def test_early_config_prune_is_honoured(interp, timed):
    seen = []

    def prune(configs, named_args, **kwargs):
        seen.append((len(configs), named_args["n"], named_args["x_ptr"].dtype))
        return [c for c in configs if c.kwargs["BLOCK"] <= named_args["n"]]

    t = tuned(prune_configs_by={"early_config_prune": prune})
    launch(t, n=40, size=64)
    assert seen == [(3, 40, np.float32)]
    assert sorted(timed) == [16, 32]
    assert t.best_config.kwargs == {"BLOCK": 32}


def test_prune_to_one_config_times_nothing(interp, timed):
    t = tuned(prune_configs_by={"early_config_prune": lambda configs, args, **kw: configs[2:]})
    launch(t)
    assert timed == []
    assert t.best_config.kwargs == {"BLOCK": 64}


def test_prune_to_nothing_is_an_error(interp, timed):
    t = tuned(prune_configs_by={"early_config_prune": lambda configs, args, **kw: []})
    with pytest.raises(ArgumentError, match="early_config_prune"):
        launch(t)


@pytest.mark.parametrize("top_k", [2, 0.67])
def test_perf_model_and_top_k(interp, timed, top_k):
    model_calls = []

    def model(**kw):
        model_calls.append(kw["BLOCK"])
        assert kw["n"] == 64
        return {16: 1.0, 32: 3.0, 64: 2.0}[kw["BLOCK"]]  # estimates 16 and 64 fastest

    t = tuned(prune_configs_by={"perf_model": model, "top_k": top_k})
    launch(t)
    assert sorted(model_calls) == [16, 32, 64]
    assert sorted(timed) == [16, 64]
    assert t.best_config.kwargs == {"BLOCK": 64}


def test_unknown_prune_entry_is_an_error():
    with pytest.raises(ArgumentError, match="prune_configs_by"):
        tuned(prune_configs_by={"early_prune": lambda c, a: c})


# ------------------------------------------------------------------------- failures and limits


@ky.jit
def limited(x_ptr, out_ptr, n, factor, BLOCK: kl.constexpr):
    kl.static_assert(BLOCK <= 32, "BLOCK exceeds the limit of 32")  # a config that does not compile
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    m = offs < n
    kl.store(out_ptr + offs, kl.load(x_ptr + offs, mask=m) * factor, mask=m)


def tuned_limited(blocks):
    return ky.autotune(configs=[ky.Config({"BLOCK": b}) for b in blocks], key=["n"], warmup=0, rep=1)(
        ky.jit(limited.fn))


def test_failing_configs_are_skipped_with_a_logged_reason(interp, caplog):
    t = tuned_limited((64, 16, 128))
    with caplog.at_level(logging.INFO, logger="kaiyuan.autotune"):
        launch(t, n=16)
    assert t.best_config.kwargs == {"BLOCK": 16}
    assert "skipping config {BLOCK: 64}" in caplog.text and "exceeds the limit" in caplog.text
    (record,) = t.tuning_log
    assert [c.kwargs for c, _ in record["skipped"]] == [{"BLOCK": 64}, {"BLOCK": 128}]
    assert [c.kwargs for c in record["tried"]] == [{"BLOCK": 16}]


def test_all_configs_failing_is_a_clear_error(interp, private_cache):
    t = tuned_limited((64, 128, 256))
    with pytest.raises(ArgumentError, match=r"none of the 3 configs could run") as e:
        launch(t, n=16)
    assert "BLOCK: 128" in str(e.value) and "exceeds the limit" in str(e.value)
    assert not list((private_cache / "autotune").glob("*.json")) if (private_cache / "autotune").exists() else True


def test_rejects_caller_passing_tuned_params(interp, timed):
    t = tuned()
    x = np.ones(16, np.float32)
    with pytest.raises(ArgumentError, match="BLOCK"):
        t[(1,)](x, x, 16, 1.0, BLOCK=16)
    launch(t, n=16)  # tuned now: still an ArgumentError, not a Python TypeError
    with pytest.raises(ArgumentError, match="BLOCK"):
        t[(1,)](x, x, 16, 1.0, BLOCK=16)


def test_candidates_are_timed_in_interleaved_rounds_and_the_fastest_run_counts(interp, monkeypatch):
    # a slow spell must not decide the winner: B=32 is twice as fast as B=16 except in the two
    # rounds a spell slows it 10x; its median would then lose to B=16, its fastest run wins
    t = tuned(blocks=(16, 32), warmup=1, rep=4, budget_ms=1e6)
    order, rounds = [], {16: 0, 32: 0}

    def fake_warm(self, cfg, args, kwargs, grid):
        block = cfg.kwargs["BLOCK"]

        def once():
            order.append(block)
            rounds[block] += 1
            base = 1.0 if block == 32 else 2.0
            return base * (10 if rounds[block] <= 2 and block == 32 else 1)
        return once

    monkeypatch.setattr(autotune_mod.Autotuner, "_warm", fake_warm)
    launch(t, n=64)
    assert order == [16, 32] * 4  # A B A B ..., not A A A A B B B B
    assert t.best_config.kwargs["BLOCK"] == 32


def test_time_budget_bounds_the_repeats(interp, monkeypatch):
    t = tuned(blocks=(16, 32), warmup=1000, rep=1000, budget_ms=1.0)
    runs = []
    real_run = t.fn.run
    monkeypatch.setattr(t.fn, "run", lambda *a, **k: runs.append(1) or real_run(*a, **k), raising=False)
    launch(t, n=64)
    assert len(runs) < 200  # 2 configs x (1000 + 1000) runs without the budget


@ky.jit
def accumulate(x_ptr, out_ptr, n, factor, BLOCK: kl.constexpr):
    offs = kl.program_id(0) * BLOCK + kl.arange(0, BLOCK)
    m = offs < n
    kl.store(out_ptr + offs, kl.load(out_ptr + offs, mask=m) + kl.load(x_ptr + offs, mask=m) * factor, mask=m)


@pytest.mark.parametrize("mode", ["restore_value", "reset_to_zero"])
def test_restore_value_and_reset_to_zero(interp, mode):
    t = ky.autotune(configs=[ky.Config({"BLOCK": 16}), ky.Config({"BLOCK": 64})], key=["n"], warmup=2, rep=3,
                    **{mode: ["out_ptr"]})(ky.jit(accumulate.fn))
    x = np.arange(64, dtype=np.float32)
    out = np.full_like(x, 7.0)
    t[GRID](x, out, 64, 2.0)  # tunes (10 runs that accumulate into out), then launches once
    start = 7.0 if mode == "restore_value" else 0.0
    np.testing.assert_allclose(out, start + x * 2)


# ------------------------------------------------------------------------ disabling, reporting


def test_autotune_env_zero_uses_the_first_config(interp, private_cache, timed, monkeypatch):
    monkeypatch.setenv("KAIYUAN_AUTOTUNE", "0")
    t = tuned(blocks=(64, 32, 16))
    launch(t)
    assert timed == []
    assert t.best_config.kwargs == {"BLOCK": 64}
    assert not (private_cache / "autotune").exists()  # nothing untuned is written for later runs


def test_autotune_env_read_at_each_launch(interp, timed, monkeypatch):
    t = tuned(blocks=(64, 32, 16))
    monkeypatch.setenv("KAIYUAN_AUTOTUNE", "0")
    launch(t)
    assert timed == [] and t.best_config.kwargs == {"BLOCK": 64}
    assert t.best_config_for(np.zeros(64, np.float32), np.zeros(64, np.float32), 64, 1.0).kwargs == {"BLOCK": 64}
    monkeypatch.setenv("KAIYUAN_AUTOTUNE", "1")
    launch(t)  # the same key, now tuned
    assert sorted(timed) == [16, 32, 64] and t.best_config.kwargs == {"BLOCK": 32}
    monkeypatch.setenv("KAIYUAN_AUTOTUNE", "0")
    launch(t)  # off again: the first config, whatever was tuned
    assert len(timed) == 3 and t.best_config.kwargs == {"BLOCK": 64}


def test_autotune_env_zero_applies_pruning_first(interp, timed, monkeypatch):
    monkeypatch.setenv("KAIYUAN_AUTOTUNE", "0")
    t = tuned(blocks=(64, 32, 16), prune_configs_by={"early_config_prune": lambda cs, a, **k: cs[1:]})
    launch(t)
    assert timed == [] and t.best_config.kwargs == {"BLOCK": 32}


def test_tuning_time_is_recorded_and_logged(interp, caplog):
    t = tuned()
    assert t.last_tuning_seconds == 0.0
    with caplog.at_level(logging.INFO, logger="kaiyuan.autotune"):
        launch(t)
    assert t.last_tuning_seconds > 0.0
    (record,) = t.tuning_log
    assert record["seconds"] == t.last_tuning_seconds
    assert record["winner"] is t.best_config
    assert len(record["times"]) == 3
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("autotuned"))
    assert "scale" in line and "interp" in line and "|64" in line and "3 configs timed" in line
    assert f"best {{{t.best_config!r}}}" in line
    # a launch of an already tuned key does not tune or log again
    caplog.clear()
    launch(t)
    assert len(t.tuning_log) == 1 and "autotuned" not in caplog.text


def test_a_disk_entry_the_prune_now_rules_out_is_retuned(interp, private_cache, timed):
    """A config read from disk that the (changed) prune no longer offers is not trusted: the key
    is tuned again among the configs the prune keeps."""
    launch(tuned())                                      # BLOCK 32 wins and is stored
    timed.clear()
    no32 = {"early_config_prune": lambda configs, args, **kw: [c for c in configs if c.kwargs["BLOCK"] != 32]}
    t = tuned(prune_configs_by=no32)
    launch(t)
    assert sorted(timed) == [16, 64] and t.best_config.kwargs == {"BLOCK": 64}


# ------------------------------------------------------------------------------- compiling


def test_compile_only_compiles_and_runs_nothing(interp):
    from kaiyuan.compiler.jit import compile_only

    k = ky.jit(scale.fn)
    x, out = np.arange(64, dtype=np.float32), np.zeros(64, np.float32)
    with compile_only():
        kernel = k[(4,)](x, out, 64, 2.0, BLOCK=16)
    assert isinstance(kernel, ky.CompiledKernel) and len(k.cache) == 1
    assert not out.any()                                   # nothing ran
    k[(4,)](x, out, 64, 2.0, BLOCK=16)                     # the real launch finds it compiled
    assert len(k.cache) == 1
    np.testing.assert_allclose(out, x * 2.0)


def test_candidates_are_compiled_before_timing(interp, timed, monkeypatch):
    """Every candidate's kernel is built (in worker threads) before any is timed, and the
    precompile runs nothing: the caller's output is written once, by the winner."""
    import threading

    monkeypatch.setattr(autotune_mod.os, "cpu_count", lambda: 4)
    t = tuned()
    jit = t.__ky_jit_fn__
    threads = set()
    real = type(jit).kernel_for

    def spy(self, specs, device):
        threads.add(threading.current_thread().name)
        return real(self, specs, device)

    monkeypatch.setattr(type(jit), "kernel_for", spy)
    launch(t)
    assert timed == [16, 32, 64] and len(jit.cache) == 3
    assert {key[0] for key in jit.cache} == {"interp"}      # the workers saw the caller's device
    assert any(n.startswith("kaiyuan-autotune") for n in threads), threads
