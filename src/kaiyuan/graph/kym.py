"""Offline models: `save_kym` writes a compiled model to one `.kym` file, `load_kym` reads it back.

A .kym file is a ZIP archive: `manifest.json` (format, version, inputs/outputs, the shapes it was
specialised for, target and machine, and the size and SHA-256 of every other member),
`weights.safetensors`, `graph.mlir` (the graph IR before planning), an optional `plan.json` and
`artefacts/<name>` (compiled kernels, opaque bytes). docs/kym.md describes the layout, the checks
made on load, and why files from untrusted sources should be loaded with `trust_artefacts=False`.

Saving is atomic (a temporary file in the same folder, then `os.replace`), so a failed save
leaves the previous file as it was. It replaces an existing file only when that file is a
kaiyuan model, so that `-o model.onnx` cannot destroy the input; `overwrite=True` lifts that.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from .kym_format import (ARTEFACT_DIR, FORMAT, FORMAT_VERSION, GRAPH, MANIFEST, PLAN, READABLE_VERSIONS,
                         WEIGHTS, ModelFileError, check_artefact_name, check_io, check_manifest, check_shapes,
                         dump_json, unsafe_member_reason)
from .kym_weights import decode_weights, encode_weights

__all__ = ["KymModel", "ModelFileError", "save_kym", "load_kym", "read_manifest", "FORMAT_VERSION"]

_MANIFEST_MAX = 64 << 20     # a manifest is metadata: refuse one big enough to be an attack
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError)


@dataclass
class KymModel:
    """What `load_kym` returns. `artefacts` maps name -> (bytes, meta); it is empty when the file
    was loaded with `trust_artefacts=False` (the caller then recompiles from `ir_text`)."""

    manifest: dict
    ir_text: str
    weights: dict[str, np.ndarray]
    plan: dict | None
    artefacts: dict[str, tuple[bytes, dict]] = field(default_factory=dict)

    @property
    def inputs(self) -> list[dict]:
        return self.manifest["inputs"]

    @property
    def outputs(self) -> list[dict]:
        return self.manifest["outputs"]

    @property
    def target(self) -> str:
        return self.manifest["target"]


# ------------------------------------------------------------------------------------------- save


def save_kym(path, *, ir_text: str, weights: dict[str, np.ndarray], inputs: list[dict], outputs: list[dict],
             plan: dict | None, artefacts: dict[str, tuple[bytes, dict]], target: str,
             extra: dict | None = None, shapes: list[dict] | None = None, machine: dict | None = None,
             overwrite: bool = False) -> None:
    """Write a model to `path` (see the module docstring and docs/kym.md).

    `inputs`/`outputs`: [{"name", "dtype", "shape": [int | "symbol"]}]; `shapes`: the concrete
    input shapes the artefacts were specialised for, [{input name: [int, ...]}]; `machine`: the
    fingerprint of the machine the artefacts were built on (default: this machine and `target`'s
    device, as the autotuner records it); `extra`: any JSON object, stored as is.
    Raises ModelFileError (UnsupportedError for a weight dtype a .kym file cannot hold).
    """
    dest = _destination(path, overwrite)
    try:
        check_io(inputs, "inputs")
        check_io(outputs, "outputs")
        shapes = [] if shapes is None else shapes
        check_shapes(shapes, inputs)
        if not isinstance(ir_text, str) or not isinstance(target, str) or not target:
            raise ValueError("ir_text must be a string and target a non-empty string")
        if not isinstance(weights, dict):
            raise ValueError(f"weights must be a dict name -> numpy array, not {type(weights).__name__}")
        members = {WEIGHTS: (encode_weights(weights), zipfile.ZIP_STORED),
                   GRAPH: (ir_text.encode(), zipfile.ZIP_DEFLATED)}
        if plan is not None:
            members[PLAN] = (dump_json(plan, "plan"), zipfile.ZIP_DEFLATED)
        metas = _artefact_members(artefacts, members)
        now = _now()
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "kaiyuan_version": __version__,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "target": target, "machine": _machine(target) if machine is None else machine,
            "inputs": inputs, "outputs": outputs, "shapes": shapes, "artefacts": metas,
            "extra": {} if extra is None else extra,
            "members": {name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                        for name, (data, _) in sorted(members.items())},
        }
        manifest_bytes = dump_json(manifest, "the manifest (machine, extra, inputs or outputs)")
    except ValueError as e:
        raise ModelFileError(f"cannot save {dest}: {e}") from None
    ordered = [(MANIFEST, manifest_bytes, zipfile.ZIP_DEFLATED)]
    ordered += [(name, data, how) for name, (data, how) in sorted(members.items())]
    _write_atomic(dest, ordered, time.gmtime(max(now, 315532800))[:6])  # ZIP dates start in 1980


def _artefact_members(artefacts, members: dict) -> dict:
    """Add `artefacts/<name>` members; return {name: meta} for the manifest."""
    if not isinstance(artefacts, dict):
        raise ValueError(f"artefacts must be a dict name -> (bytes, meta), not {type(artefacts).__name__}")
    metas = {}
    for name, value in artefacts.items():
        check_artefact_name(name)
        blob, meta = value if isinstance(value, tuple) and len(value) == 2 else (None, None)
        if not isinstance(blob, (bytes, bytearray, memoryview)) or not isinstance(meta, dict):
            raise ValueError(f"artefact {name!r} must be a (bytes, dict) pair")
        members[ARTEFACT_DIR + name] = (bytes(blob), zipfile.ZIP_DEFLATED)
        metas[name] = meta
    return metas


def _now() -> int:
    # SOURCE_DATE_EPOCH (reproducible-builds.org) makes two saves of one model byte-identical.
    sde = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(sde) if sde.isdigit() else int(time.time())


def _machine(target: str) -> dict:
    from ..compiler.autotune import machine_fingerprint
    from ..runtime import get_device

    return machine_fingerprint(get_device(target))


def _destination(path, overwrite: bool) -> Path:
    """The real path to write (through symlinks); refuses to replace a file that is not a model."""
    dest = Path(os.path.realpath(os.fspath(path)))
    if dest.is_dir():
        raise ModelFileError(f"cannot save {path}: it is a folder", hint="give a file name such as model.kym")
    if dest.exists() and not overwrite and not _is_kym(dest):
        raise ModelFileError(f"refusing to replace {path}: it exists and is not a kaiyuan model",
                             hint="choose another output name (model.kym), or pass overwrite=True "
                                  "(CLI: --force) to replace it")
    return dest


def _is_kym(path: Path) -> bool:
    """Whether `path` holds a kaiyuan model of any format version (damaged or not)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read(MANIFEST)).get("format") == FORMAT
    except Exception:  # anything unreadable is not a model we may replace without being told
        return False


def _write_atomic(dest: Path, members: list, date_time: tuple) -> None:
    """Write the ZIP to a temporary file beside `dest`, sync it, then rename it over `dest`."""
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
    try:
        # os.open with 0o666 lets the umask set the final permissions, as for any new file.
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
            with zipfile.ZipFile(f, "w") as zf:
                for name, data, how in members:
                    info = zipfile.ZipInfo(name, date_time)
                    info.compress_type = how
                    info.external_attr = 0o644 << 16
                    zf.writestr(info, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise ModelFileError(f"cannot save {dest}: {e.strerror or e}",
                                 hint="check that the folder exists, is writable and has space") from None
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows it
        fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------------------- load


def load_kym(path, *, trust_artefacts: bool = True) -> KymModel:
    """Read and verify a .kym file (every check in docs/kym.md); ModelFileError when one fails.

    With `trust_artefacts=False` the compiled artefacts are still verified but not returned, so
    that nothing compiled elsewhere runs here: the caller recompiles from `ir_text`.
    """
    where = os.fspath(path)
    with _open_zip(where) as zf:
        infos = _member_infos(zf, where)
        manifest = _manifest(zf, infos, where)
        listed = manifest["members"]
        for name in sorted(set(infos) - {MANIFEST} - set(listed)):
            _fail(where, f"member {name!r} is not listed in the manifest", "the file was modified after saving")
        blobs = {name: _read_member(zf, infos.get(name), entry, name, where) for name, entry in listed.items()}
    try:
        weights = decode_weights(blobs[WEIGHTS])
    except ValueError as e:
        _fail(where, f"{WEIGHTS} does not parse: {e}")
    try:
        ir_text = blobs[GRAPH].decode()
        plan = json.loads(blobs[PLAN]) if PLAN in blobs else None
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        _fail(where, f"{GRAPH} or {PLAN} does not parse: {e}")
    artefacts = {}
    if trust_artefacts:
        artefacts = {name: (blobs[ARTEFACT_DIR + name], meta) for name, meta in manifest["artefacts"].items()}
    return KymModel(manifest, ir_text, weights, plan, artefacts)


def read_manifest(path) -> dict:
    """The verified manifest alone (format, version and structure checked; members not read)."""
    where = os.fspath(path)
    with _open_zip(where) as zf:
        return _manifest(zf, _member_infos(zf, where), where)


def _fail(where: str, message: str, hint: str | None = None):
    # `from None`: the zipfile/json exception behind a failed check is in the message already.
    raise ModelFileError(message, hint=hint, loc=where) from None


@contextlib.contextmanager
def _open_zip(where: str):
    try:
        f = open(where, "rb")
    except OSError as e:
        _fail(where, f"cannot open the model: {e.strerror or e}")
    with f:
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, EOFError):
            f.seek(0)
            if f.read(4) == b"PK\x03\x04":
                _fail(where, "the model file is truncated or damaged (its ZIP directory cannot be read)",
                      "copy or download it again, or recompile it")
            _fail(where, "not a kaiyuan model (not a ZIP archive)",
                  "a .kym file is written by `kaiyuan compile model.onnx -o model.kym`")
        with zf:
            yield zf


def _member_infos(zf: zipfile.ZipFile, where: str) -> dict[str, zipfile.ZipInfo]:
    """Name -> ZipInfo, refusing names that could escape a folder and names given twice."""
    infos = {}
    for info in zf.infolist():
        reason = unsafe_member_reason(info.filename)
        if reason:
            _fail(where, f"member name {info.filename!r} {reason}; refused (path traversal)",
                  "the file was not written by kaiyuan; do not extract it")
        if info.filename in infos:
            _fail(where, f"member {info.filename!r} appears twice", "the file was modified after saving")
        infos[info.filename] = info
    return infos


def _manifest(zf: zipfile.ZipFile, infos: dict, where: str) -> dict:
    info = infos.get(MANIFEST)
    if info is None:
        _fail(where, f"not a kaiyuan model (no {MANIFEST})",
              "a .kym file is written by `kaiyuan compile model.onnx -o model.kym`")
    if info.file_size > _MANIFEST_MAX:
        _fail(where, f"{MANIFEST} is {info.file_size} bytes, more than a manifest can be")
    try:
        manifest = json.loads(zf.read(info))
    except _ZIP_ERRORS as e:
        _fail(where, f"member {MANIFEST!r} is corrupt: {e}", "copy or download the file again")
    except ValueError as e:
        _fail(where, f"{MANIFEST} is not valid JSON: {e}")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else None
        _fail(where, f"not a kaiyuan model (manifest format {got!r}, expected {FORMAT!r})")
    _check_version(manifest, where)
    try:
        check_manifest(manifest)
    except ValueError as e:
        _fail(where, f"{MANIFEST} is malformed: {e}")
    return manifest


def _check_version(manifest: dict, where: str) -> None:
    version, writer = manifest.get("format_version"), manifest.get("kaiyuan_version", "?")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        _fail(where, f"{MANIFEST} is malformed: format_version {version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        _fail(where, f"the model uses .kym format version {version} (written by kaiyuan {writer}); "
                     f"this kaiyuan ({__version__}) reads format versions up to {FORMAT_VERSION}",
              f"upgrade kaiyuan to {writer} or later, or recompile the model with this kaiyuan")
    if version not in READABLE_VERSIONS:
        _fail(where, f"kaiyuan {__version__} no longer reads .kym format version {version}",
              "recompile the model from its source (kaiyuan compile model.onnx -o model.kym)")


def _read_member(zf: zipfile.ZipFile, info, entry: dict, name: str, where: str) -> bytes:
    """The member's bytes, checked against the manifest's size and SHA-256."""
    damaged = "the file is truncated or was modified after saving; copy it again or recompile it"
    if info is None:
        _fail(where, f"member {name!r} is listed in the manifest but missing", damaged)
    if info.file_size != entry["size"]:
        _fail(where, f"member {name!r} has {info.file_size} bytes; the manifest says {entry['size']}", damaged)
    try:
        data = zf.read(info)
    except _ZIP_ERRORS as e:  # CRC mismatch, bad deflate stream, cut-off data
        _fail(where, f"member {name!r} is corrupt: {e}", damaged)
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        _fail(where, f"member {name!r} does not match its SHA-256 in the manifest", damaged)
    return data
