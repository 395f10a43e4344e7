"""The disk cache (hits across fresh JITFunctions, corrupt entries rebuilt, atomic writes) and
KAIYUAN_DUMP."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kaiyuan as ky
import kaiyuan.language as kl
from kaiyuan.compiler import pipeline
from kaiyuan.compiler.cache import DiskCache

SIG = {"x_ptr": "*fp32", "n": "i32"}


def add_one(x_ptr, n, BLOCK: kl.constexpr):
    offs = kl.arange(0, BLOCK)
    kl.store(x_ptr + offs, kl.load(x_ptr + offs, mask=offs < n) + 1.0, mask=offs < n)


@pytest.fixture
def stage_runs(monkeypatch):
    calls = []
    real = pipeline._run_stages

    def spy(stages, module, meta):
        calls.append(meta["name"])
        return real(stages, module, meta)

    monkeypatch.setattr(pipeline, "_run_stages", spy)
    return calls


def entries(root):
    return sorted(p for p in root.glob("*/*") if p.is_dir())


def test_second_compile_in_a_fresh_jitfunction_hits_the_disk_cache(private_cache, stage_runs):
    a = ky.compile(ky.jit(add_one), target="interp", signature=SIG, constants={"BLOCK": 16})
    assert stage_runs == ["add_one"]
    b = ky.compile(ky.jit(add_one), target="interp", signature=SIG, constants={"BLOCK": 16})
    assert stage_runs == ["add_one"]  # no stage ran the second time
    assert a.key == b.key and a.asm == b.asm
    assert len(entries(private_cache)) == 1
    # a different specialisation is a different entry
    ky.compile(ky.jit(add_one), target="interp", signature=SIG, constants={"BLOCK": 32})
    assert len(stage_runs) == 2 and len(entries(private_cache)) == 2


def test_cache_hit_kernel_still_runs(private_cache, stage_runs):
    x = np.arange(16, dtype=np.float32)
    with ky.device("interp"):
        ky.jit(add_one)[(1,)](x, 10, BLOCK=16)
        ky.jit(add_one)[(1,)](x, 10, BLOCK=16)
    assert len(stage_runs) == 1
    np.testing.assert_array_equal(x, np.r_[np.arange(10) + 2.0, np.arange(10, 16)].astype(np.float32))


def _one_entry(root):
    (entry,) = entries(root)
    return entry


@pytest.mark.parametrize("damage", ["flip_binary", "truncate_manifest", "delete_binary", "garbage_manifest",
                                    "delete_stage"])
def test_corrupt_entry_is_rebuilt_and_never_loaded(private_cache, stage_runs, monkeypatch, damage):
    ky.compile(ky.jit(add_one), target="interp", signature=SIG, constants={"BLOCK": 16})
    entry = _one_entry(private_cache)
    if damage == "flip_binary":
        data = bytearray((entry / "binary").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (entry / "binary").write_bytes(bytes(data))
    elif damage == "truncate_manifest":
        text = (entry / "manifest.json").read_text()
        (entry / "manifest.json").write_text(text[: len(text) // 2])
    elif damage == "delete_binary":
        (entry / "binary").unlink()
    elif damage == "garbage_manifest":
        (entry / "manifest.json").write_text(json.dumps({"hello": 1}))
    elif damage == "delete_stage":
        next(entry.glob("00-*")).unlink()

    from kaiyuan.backends.interp import InterpCompiler

    loaded = []
    real_load = InterpCompiler.load
    monkeypatch.setattr(InterpCompiler, "load", lambda self, binary, meta: loaded.append(binary) or real_load(self, binary, meta))
    k = ky.compile(ky.jit(add_one), target="interp", signature=SIG, constants={"BLOCK": 16})
    assert len(stage_runs) == 2  # rebuilt
    assert len(loaded) == 1
    assert loaded[0] == k.asm["bin"] and loaded[0].startswith(b"builtin.module")
    # and the rebuilt entry is whole again: the next compile hits it
    ky.compile(ky.jit(add_one), target="interp", signature=SIG, constants={"BLOCK": 16})
    assert len(stage_runs) == 2
    entry = _one_entry(private_cache)
    manifest = json.loads((entry / "manifest.json").read_text())
    import hashlib

    assert manifest["binary_sha256"] == hashlib.sha256((entry / "binary").read_bytes()).hexdigest()


def test_put_is_atomic_and_leaves_no_temporary_folders(tmp_path):
    cache = DiskCache(tmp_path / "c")
    key = "ab" + "0" * 62
    kinds = [("ky", "ir"), ("bin", "binary")]
    cache.put(key, b"BINARY", {"ky": "module", "bin": b"BINARY"}, kinds, {"name": "k"})
    folder = tmp_path / "c" / "ab"
    assert [p.name for p in folder.iterdir()] == [key]
    assert sorted(p.name for p in (folder / key).iterdir()) == ["00-ky.mlir", "01-bin.bin", "binary", "manifest.json"]
    assert cache.get(key) == (b"BINARY", {"ky": "module", "bin": b"BINARY"}, {"name": "k"})
    # a second put of the same key (another process won the race) leaves one entry, no temp dir
    cache.put(key, b"BINARY", {"ky": "module", "bin": b"BINARY"}, kinds, {"name": "k"})
    assert [p.name for p in folder.iterdir()] == [key]


def test_failed_put_leaves_no_partial_entry(tmp_path, monkeypatch):
    import kaiyuan.compiler.cache as cache_mod

    cache = DiskCache(tmp_path / "c")
    key = "cd" + "1" * 62

    def boom(folder, asm, kinds):
        (folder / "00-ky.mlir").write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod, "write_stages", boom)
    cache.put(key, b"B", {"ky": "m", "bin": b"B"}, [("ky", "ir"), ("bin", "binary")], {})
    assert cache.get(key) is None
    leftovers = list((tmp_path / "c").rglob("*"))
    assert not [p for p in leftovers if p.is_dir() and p.name != "cd"], leftovers


def test_corrupt_entry_is_removed_on_get(tmp_path):
    cache = DiskCache(tmp_path / "c")
    key = "ef" + "2" * 62
    cache.put(key, b"B", {"ky": "m", "bin": b"B"}, [("ky", "ir"), ("bin", "binary")], {})
    (tmp_path / "c" / "ef" / key / "binary").write_bytes(b"X")
    assert cache.get(key) is None
    assert not (tmp_path / "c" / "ef" / key).exists()


def test_cache_key_depends_on_ir_target_options_and_toolchain():
    from kaiyuan.compiler.cache import cache_key

    base = cache_key("ir", "interp", {}, "tc1")
    assert base == cache_key("ir", "interp", {}, "tc1")
    assert len({base, cache_key("ir2", "interp", {}, "tc1"), cache_key("ir", "cpu", {}, "tc1"),
                cache_key("ir", "interp", {"O": 3}, "tc1"), cache_key("ir", "interp", {}, "tc2")}) == 5


def test_dump_writes_numbered_stage_files(tmp_path, monkeypatch, stage_runs):
    dump = tmp_path / "dump"
    monkeypatch.setenv("KAIYUAN_DUMP", str(dump))
    k = ky.compile(ky.jit(add_one), target="interp", signature=SIG, constants={"BLOCK": 16})
    (folder,) = list(dump.iterdir())
    assert folder.name == f"add_one-{k.key[:8]}"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["00-ky.mlir", "01-bin.bin"]
    assert (folder / "00-ky.mlir").read_text() == k.asm["ky"]
    assert (folder / "00-ky.mlir").read_text().startswith("builtin.module")
    # on a cache hit too
    import shutil

    shutil.rmtree(dump)
    ky.compile(ky.jit(add_one), target="interp", signature=SIG, constants={"BLOCK": 16})
    assert len(stage_runs) == 1
    assert sorted(p.name for p in next(dump.iterdir()).iterdir()) == names


def test_asm_stages_first_is_ky():
    k = ky.compile(ky.jit(add_one), target="interp", signature=SIG, constants={"BLOCK": 16})
    assert list(k.asm)[0] == "ky" and k.stages[0] == ("ky", "ir")
    assert k.meta["constants"] == {"BLOCK": 16} and k.meta["arg_types"] == ["*fp32", "i32"]


def _cpu_available():
    return any(d.name == "cpu" and d.available for d in ky.devices())


@pytest.mark.skipif(not _cpu_available(), reason="cpu backend not registered yet")
def test_cpu_target_gives_ky_then_c():
    k = ky.compile(ky.jit(add_one), target="cpu", signature=SIG, constants={"BLOCK": 16})
    names = list(k.asm)
    assert names[0] == "ky"
    text_stages = [n for n, kind in k.stages if kind == "text"]
    assert text_stages and text_stages[-1] == "c"
    assert "#include" in k.asm["c"] or "void" in k.asm["c"]
