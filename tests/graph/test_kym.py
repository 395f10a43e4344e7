"""The .kym offline model file: round trips, and refusal of every damaged or hostile file.

Weights must come back bit-exact (compared as bytes, so NaN payloads and -0.0 count too).
Damaged files are made three ways: raw byte surgery (truncation, a flipped byte: the ZIP layer
notices), a consistent ZIP whose member no longer matches the manifest (only the SHA-256 or size
check notices), and a consistent ZIP with a hand-edited manifest.
"""

import hashlib
import json
import os
import struct
import warnings
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import kaiyuan.graph.kym as kym
from kaiyuan.graph.kym import ModelFileError, load_kym, read_manifest, save_kym
from kaiyuan.runtime.errors import KaiyuanError, UnsupportedError

DTYPES = [np.float32, np.float64, np.float16, ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn,
          ml_dtypes.float8_e5m2, ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2fnuz, np.bool_,
          np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
SHAPES = [(), (0,), (3, 0, 2), (1,), (7,), (2, 3, 5)]


def _array(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 50).astype(dtype)


def _kwargs(**over):
    kw = dict(ir_text="kyg.module @main {}\n", weights={"w": np.arange(6, dtype=np.float32).reshape(2, 3)},
              inputs=[{"name": "ids", "dtype": "int64", "shape": ["batch", "seq"]},
                      {"name": "mask", "dtype": "int64", "shape": ["batch", "seq"]}],
              outputs=[{"name": "emb", "dtype": "float32", "shape": ["batch", 384]}],
              plan={"steps": [{"op": "MatMul"}]}, artefacts={"k0.so": (b"\x7fELF\x00binary", {"entry": "k0"})},
              target="cpu", shapes=[{"ids": [1, 128], "mask": [1, 128]}], machine={"cpu": "test"})
    kw.update(over)
    return kw


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "m.kym"
    save_kym(path, **_kwargs())
    return path


def _same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == np.ascontiguousarray(b).tobytes()


# ------------------------------------------------------------------------------------ round trip


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip_every_dtype(tmp_path, dtype):
    weights = {f"w{i}": _array(dtype, s, i) for i, s in enumerate(SHAPES)}
    weights["strided"] = _array(dtype, (6, 5))[::2, ::-1].T        # non-contiguous input
    save_kym(tmp_path / "m.kym", **_kwargs(weights=weights))
    got = load_kym(tmp_path / "m.kym").weights
    assert set(got) == set(weights)
    for name, arr in weights.items():
        assert _same_bits(got[name], arr), name
        assert got[name].flags.writeable


def test_round_trip_everything_else(model):
    kw = _kwargs()
    m = load_kym(model)
    assert m.ir_text == kw["ir_text"] and m.plan == kw["plan"] and m.artefacts == kw["artefacts"]
    assert m.inputs == kw["inputs"] and m.outputs == kw["outputs"] and m.target == "cpu"
    man = m.manifest
    assert (man["format"], man["format_version"], man["kaiyuan_version"]) == ("kaiyuan-model", 1, "0.1.0")
    assert man["shapes"] == kw["shapes"] and man["machine"] == {"cpu": "test"} and man["extra"] == {}
    assert man["created_at"].endswith("Z")
    with zipfile.ZipFile(model) as zf:
        assert set(man["members"]) == set(zf.namelist()) - {"manifest.json"}
        assert zf.getinfo("weights.safetensors").compress_type == zipfile.ZIP_STORED
    assert read_manifest(model) == man


def test_minimal_model_empty_weights(tmp_path):
    path = tmp_path / "m.kym"
    save_kym(path, **_kwargs(weights={}, plan=None, artefacts={}, shapes=None, inputs=[], outputs=[],
                             extra={"opset": 17}))
    m = load_kym(path)
    assert m.weights == {} and m.plan is None and m.artefacts == {} and m.manifest["shapes"] == []
    assert m.manifest["extra"] == {"opset": 17}
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["graph.mlir", "manifest.json", "weights.safetensors"]


def test_default_machine_is_this_one(tmp_path):
    from kaiyuan.compiler.autotune import machine_fingerprint
    from kaiyuan.runtime import get_device

    save_kym(tmp_path / "m.kym", **_kwargs(machine=None))
    assert read_manifest(tmp_path / "m.kym")["machine"] == machine_fingerprint(get_device("cpu"))


def test_untrusted_artefacts_are_not_returned(model):
    m = load_kym(model, trust_artefacts=False)
    assert m.artefacts == {}
    assert m.manifest["artefacts"] == {"k0.so": {"entry": "k0"}}    # the caller can see what it skips
    assert m.ir_text and m.weights


def test_save_is_reproducible(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    save_kym(tmp_path / "a.kym", **_kwargs())
    save_kym(tmp_path / "b.kym", **_kwargs())
    assert (tmp_path / "a.kym").read_bytes() == (tmp_path / "b.kym").read_bytes()
    assert read_manifest(tmp_path / "a.kym")["created_at"] == "2023-11-14T22:13:20Z"


# ------------------------------------------------------------------------------- helpers: damage


def _members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write_zip(path, members: dict[str, bytes]):
    """A consistent ZIP (CRCs right) with exactly these members: only kaiyuan's checks can object."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                                # duplicate names on purpose
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in (members.items() if isinstance(members, dict) else members):
                zf.writestr(zipfile.ZipInfo(name), data)


def _edit_manifest(path, **changes):
    members = _members(path)
    man = json.loads(members["manifest.json"])
    man.update(changes)
    members["manifest.json"] = json.dumps(man).encode()
    _write_zip(path, members)


def _refused(path, *words, **kw) -> ModelFileError:
    with pytest.raises(ModelFileError) as info:
        load_kym(path, **kw)
    e = info.value
    assert e.code == "KY-E710" and isinstance(e, KaiyuanError) and e.loc == str(path)
    for w in words:
        assert w in str(e), (w, str(e))
    return e


# ------------------------------------------------------------------------------- damaged files


def test_not_a_zip(tmp_path):
    (tmp_path / "m.kym").write_bytes(b"ONNX? no, just text\n" * 10)
    e = _refused(tmp_path / "m.kym", "not a kaiyuan model", "not a ZIP")
    assert e.hint and "kaiyuan compile" in e.hint


def test_missing_file(tmp_path):
    _refused(tmp_path / "absent.kym", "cannot open")


def test_zip_without_manifest(tmp_path):
    _write_zip(tmp_path / "m.kym", {"weights.safetensors": b""})
    _refused(tmp_path / "m.kym", "not a kaiyuan model", "manifest.json")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, -1])
def test_truncated(model, keep):
    raw = model.read_bytes()
    model.write_bytes(raw[:keep] if keep == -1 else raw[:int(len(raw) * keep)])
    _refused(model, "truncated")


def _data_span(path, name) -> tuple[int, int]:
    """Where a member's (compressed) bytes lie in the raw file."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    raw = Path(path).read_bytes()
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    return start, start + info.compress_size


@pytest.mark.parametrize("member", ["manifest.json", "weights.safetensors", "graph.mlir", "plan.json",
                                    "artefacts/k0.so"])
@pytest.mark.parametrize("where", [0.0, 0.5, 0.99])
def test_flipped_byte_in_each_member(model, member, where):
    start, end = _data_span(model, member)
    raw = bytearray(model.read_bytes())
    raw[start + int((end - start - 1) * where)] ^= 0x5A
    model.write_bytes(bytes(raw))
    _refused(model, repr(member))


@pytest.mark.parametrize("member", ["weights.safetensors", "graph.mlir", "plan.json", "artefacts/k0.so"])
def test_tampered_member_same_size(model, member):
    members = _members(model)
    data = bytearray(members[member])
    data[len(data) // 2] ^= 1
    members[member] = bytes(data)
    _write_zip(model, members)
    _refused(model, repr(member), "SHA-256")


@pytest.mark.parametrize("member", ["weights.safetensors", "graph.mlir", "artefacts/k0.so"])
def test_tampered_member_other_size(model, member):
    members = _members(model)
    members[member] = members[member][:-1]
    _write_zip(model, members)
    _refused(model, repr(member), "bytes; the manifest says")


@pytest.mark.parametrize("member", ["graph.mlir", "weights.safetensors", "artefacts/k0.so"])
def test_missing_member(model, member):
    members = _members(model)
    del members[member]
    _write_zip(model, members)
    _refused(model, repr(member), "missing")


@pytest.mark.parametrize("extra", ["artefacts/evil.so", "notes.txt", "plan.json"])
def test_unlisted_member(tmp_path, extra):
    path = tmp_path / "m.kym"
    save_kym(path, **_kwargs(plan=None))
    members = _members(path)
    members[extra] = b"\x90" * 16
    _write_zip(path, members)
    _refused(path, repr(extra), "not listed")


@pytest.mark.parametrize("name", ["../evil.so", "artefacts/../../x", "/etc/x", "C:/x", "a\\b", "artefacts/"])
def test_path_traversal_names(model, name):
    members = _members(model)
    members[name] = b"x"
    _write_zip(model, members)
    _refused(model, repr(name), "path traversal")


def test_duplicate_member(model):
    members = list(_members(model).items())
    _write_zip(model, members + [("graph.mlir", b"other")])
    _refused(model, "'graph.mlir'", "twice")


def test_newer_format_version(model):
    _edit_manifest(model, format_version=2, kaiyuan_version="0.9.0")
    e = _refused(model, "format version 2", "kaiyuan 0.9.0", "up to 1")
    assert "upgrade kaiyuan to 0.9.0" in e.hint
    with pytest.raises(ModelFileError, match="format version 2"):
        read_manifest(model)


@pytest.mark.parametrize("bad", [0, -1, "1", 1.0, True, None])
def test_malformed_format_version(model, bad):
    _edit_manifest(model, format_version=bad)
    _refused(model, "format_version")


def test_older_versions_stay_readable(model, monkeypatch):
    # The day version 2 is written, version 1 files must still load (and, once dropped, say so).
    monkeypatch.setattr(kym, "FORMAT_VERSION", 2)
    monkeypatch.setattr(kym, "READABLE_VERSIONS", frozenset({1, 2}))
    assert load_kym(model).manifest["format_version"] == 1
    monkeypatch.setattr(kym, "READABLE_VERSIONS", frozenset({2}))
    _refused(model, "no longer reads", "version 1")


def test_wrong_format_name(model):
    _edit_manifest(model, format="onnx-model")
    _refused(model, "not a kaiyuan model", "'onnx-model'")


@pytest.mark.parametrize("changes, words", [
    ({"members": []}, ["members"]),
    ({"target": 3}, ["target"]),
    ({"inputs": [{"name": "x"}]}, ["dtype"]),
    ({"artefacts": {}}, ["artefact"]),
    ({"shapes": [{"ids": [1]}]}, ["ids"]),
])
def test_malformed_manifest(model, changes, words):
    _edit_manifest(model, **changes)
    _refused(model, "malformed", *words)


def test_manifest_not_json(model):
    members = _members(model)
    members["manifest.json"] = b"{not json"
    _write_zip(model, members)
    _refused(model, "not valid JSON")


def test_weights_that_do_not_parse(model):
    # Consistent checksums, so only the safetensors parser can object.
    members = _members(model)
    bad = b"\xff" * 16
    members["weights.safetensors"] = bad
    man = json.loads(members["manifest.json"])
    man["members"]["weights.safetensors"] = {"size": len(bad), "sha256": hashlib.sha256(bad).hexdigest()}
    members["manifest.json"] = json.dumps(man).encode()
    _write_zip(model, members)
    _refused(model, "weights.safetensors does not parse")


# ------------------------------------------------------------------------------------- saving


def _listing(folder):
    return sorted(os.listdir(folder))


def test_failed_save_keeps_old_file_unserialisable_weight(model):
    before, names = model.read_bytes(), _listing(model.parent)
    with pytest.raises(UnsupportedError, match="'bad'.*complex128"):
        save_kym(model, **_kwargs(weights={"ok": np.zeros(3), "bad": np.zeros(3, np.complex128)}))
    assert model.read_bytes() == before and _listing(model.parent) == names


def test_failed_save_midway_keeps_old_file(model, monkeypatch):
    before, names = model.read_bytes(), _listing(model.parent)
    real = zipfile.ZipFile.writestr
    calls = []

    def fail_on_third(self, info, data, *a, **k):
        calls.append(info)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(self, info, data, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", fail_on_third)
    with pytest.raises(ModelFileError, match="No space left") as info:
        save_kym(model, **_kwargs(weights={"new": np.ones(1000)}))
    assert "writable" in info.value.hint and len(calls) == 3
    assert model.read_bytes() == before and _listing(model.parent) == names


def test_save_into_missing_folder(tmp_path):
    with pytest.raises(ModelFileError, match="cannot save"):
        save_kym(tmp_path / "nope" / "m.kym", **_kwargs())


def test_replaces_an_existing_model(model):
    save_kym(model, **_kwargs(ir_text="kyg.module @v2 {}\n"))
    assert load_kym(model).ir_text == "kyg.module @v2 {}\n"


@pytest.mark.parametrize("name", ["model.onnx", "broken.kym"])
def test_refuses_to_replace_other_files(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x08\x07 precious onnx bytes")
    with pytest.raises(ModelFileError, match="refusing to replace") as info:
        save_kym(path, **_kwargs())
    assert "overwrite=True" in info.value.hint
    assert path.read_bytes() == b"\x08\x07 precious onnx bytes"
    save_kym(path, **_kwargs(), overwrite=True)
    assert load_kym(path).target == "cpu"


def test_refuses_a_folder(tmp_path):
    with pytest.raises(ModelFileError, match="folder"):
        save_kym(tmp_path, **_kwargs())


def test_symlink_is_followed(model, tmp_path):
    link = tmp_path / "link.kym"
    link.symlink_to(model)
    save_kym(link, **_kwargs(ir_text="kyg.module @via_link {}\n"))
    assert link.is_symlink() and load_kym(model).ir_text == "kyg.module @via_link {}\n"


@pytest.mark.parametrize("over, match", [
    ({"artefacts": {"../x.so": (b"", {})}}, "artefact name"),
    ({"artefacts": {"a/b.so": (b"", {})}}, "artefact name"),
    ({"artefacts": {"k.so": (b"", "meta")}}, "pair"),
    ({"artefacts": {"k.so": b""}}, "pair"),
    ({"artefacts": {"k.so": (b"", {"f": object()})}}, "JSON"),
    ({"plan": {"x": float("nan")}}, "plan is not JSON"),
    ({"extra": {"x": {1, 2}}}, "JSON"),
    ({"inputs": [{"name": "x", "dtype": "f32", "shape": [-1]}]}, "shape"),
    ({"inputs": [{"name": "x", "dtype": "f32", "shape": [None]}]}, "shape"),
    ({"outputs": [{"name": "y", "dtype": "f32", "shape": []}] * 2}, "twice"),
    ({"shapes": [{"ids": [1, 128]}]}, "exactly the inputs"),
    ({"shapes": [{"ids": [1, 128], "mask": [1]}]}, "2 ints"),
    ({"shapes": [{"ids": [1, 128], "mask": [2, 128]}]}, "'batch' is 1"),
    ({"outputs": [], "shapes": [], "inputs": [{"name": "x", "dtype": "f32", "shape": [3]}]}, None),
    ({"target": ""}, "target"),
    ({"weights": [np.zeros(2)]}, "dict"),
])
def test_bad_save_arguments(tmp_path, over, match):
    path = tmp_path / "m.kym"
    if match is None:                                   # the control case: these are fine
        save_kym(path, **_kwargs(**over))
        return
    with pytest.raises(ModelFileError, match=match):
        save_kym(path, **_kwargs(**over))
    assert not path.exists() and _listing(tmp_path) == []


def test_fixed_dimension_must_fit(tmp_path):
    kw = _kwargs(inputs=[{"name": "x", "dtype": "f32", "shape": ["n", 4]}], shapes=[{"x": [2, 5]}])
    with pytest.raises(ModelFileError, match="does not fit"):
        save_kym(tmp_path / "m.kym", **kw)


@pytest.mark.parametrize("weights, match", [
    ({"__metadata__": np.zeros(1)}, "__metadata__"),
    ({"w": [1.0, 2.0]}, "not a numpy array"),
    ({"w": np.array(["a"])}, "dtype"),
    ({"w": np.zeros(2, ml_dtypes.int4)}, "int4"),
])
def test_unsupported_weights(tmp_path, weights, match):
    with pytest.raises(UnsupportedError, match=match) as info:
        save_kym(tmp_path / "m.kym", **_kwargs(weights=weights))
    assert info.value.hint
