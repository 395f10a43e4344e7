"""The .kym format's rules: names, versions, and what a well-formed manifest holds.

Checks here raise `ValueError(reason)`; `kym.py` turns the reason into a `ModelFileError` that
says whether saving or loading failed and which file it was. docs/kym.md describes the format.
"""

from __future__ import annotations

import json
import re

from ..runtime.errors import ModelFileError  # noqa: F401  (re-exported for kym.py)

FORMAT = "kaiyuan-model"
FORMAT_VERSION = 1                  # what this kaiyuan writes
READABLE_VERSIONS = frozenset({1})  # what it reads: older versions stay here when a new one comes

MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
GRAPH = "graph.mlir"
PLAN = "plan.json"
ARTEFACT_DIR = "artefacts/"
REQUIRED_MEMBERS = (WEIGHTS, GRAPH)

# Artefact names are flat: a letter or digit, then letters, digits, '.', '_', '-'. Nothing that a
# file system could read as a folder, a parent or a drive.
_ARTEFACT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def unsafe_member_reason(name: str) -> str | None:
    """Why a ZIP member name could escape a folder it is extracted into, or None when it is safe."""
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "is an absolute path"
    if "\\" in name or "\0" in name:
        return "contains a backslash or NUL"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "contains an empty, '.' or '..' path component"
    return None


def check_artefact_name(name) -> None:
    if not isinstance(name, str) or not _ARTEFACT_NAME.fullmatch(name):
        raise ValueError(f"artefact name {name!r} must match {_ARTEFACT_NAME.pattern}")


def dump_json(obj, what: str) -> bytes:
    """Strict JSON (no NaN/Infinity, string keys) so that any JSON reader can read a manifest."""
    try:
        return json.dumps(obj, sort_keys=True, indent=1, allow_nan=False, ensure_ascii=False).encode()
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} is not JSON-serialisable: {e}") from None


def check_io(ios, what: str) -> None:
    """`inputs`/`outputs`: a list of {"name": str, "dtype": str, "shape": [int >= 0 | str]}."""
    if not isinstance(ios, list):
        raise ValueError(f"{what} must be a list of dicts, not {type(ios).__name__}")
    seen = set()
    for io in ios:
        if not isinstance(io, dict) or not isinstance(io.get("name"), str) or not io["name"]:
            raise ValueError(f"each entry of {what} must be a dict with a non-empty 'name'; got {io!r}")
        if io["name"] in seen:
            raise ValueError(f"{what} name {io['name']!r} appears twice")
        seen.add(io["name"])
        if not isinstance(io.get("dtype"), str):
            raise ValueError(f"{what} {io['name']!r}: 'dtype' must be a string")
        shape = io.get("shape")
        if not isinstance(shape, list) or not all(_is_dim(d) for d in shape):
            raise ValueError(f"{what} {io['name']!r}: 'shape' must be a list of ints >= 0 and "
                             f"non-empty strings (symbolic dimensions); got {shape!r}")


def _is_dim(d) -> bool:
    if isinstance(d, bool):
        return False
    return (isinstance(d, int) and d >= 0) or (isinstance(d, str) and d != "")


def check_shapes(shapes, inputs: list[dict]) -> None:
    """Each specialisation gives every input a concrete shape that fits its declared one; a
    symbolic dimension shared by several inputs takes one value per specialisation."""
    if not isinstance(shapes, list):
        raise ValueError(f"shapes must be a list of {{input name: [int, ...]}} dicts, not {type(shapes).__name__}")
    declared = {io["name"]: io["shape"] for io in inputs}
    for spec in shapes:
        if not isinstance(spec, dict) or set(spec) != set(declared):
            names = sorted(spec) if isinstance(spec, dict) else spec
            raise ValueError(f"a specialisation must give a shape to exactly the inputs "
                             f"{sorted(declared)}; got {names!r}")
        symbols: dict[str, int] = {}
        for name, dims in spec.items():
            _check_concrete(name, dims, declared[name], symbols)


def _check_concrete(name: str, dims, decl: list, symbols: dict) -> None:
    ok = isinstance(dims, list) and len(dims) == len(decl) and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims)
    if not ok:
        raise ValueError(f"specialised shape of {name!r} must be {len(decl)} ints >= 0; got {dims!r}")
    for d, want in zip(dims, decl):
        if isinstance(want, int) and d != want:
            raise ValueError(f"specialised shape {dims} of {name!r} does not fit its declared shape {decl}")
        if isinstance(want, str) and symbols.setdefault(want, d) != d:
            raise ValueError(f"dimension {want!r} is {symbols[want]} in one input and {d} in {name!r}")


def check_manifest(m) -> None:
    """The structure a loader relies on (format and version are checked before, by the caller)."""
    if not isinstance(m.get("target"), str):
        raise ValueError("'target' must be a string")
    check_io(m.get("inputs"), "inputs")
    check_io(m.get("outputs"), "outputs")
    check_shapes(m.get("shapes"), m["inputs"])
    members = m.get("members")
    if not isinstance(members, dict):
        raise ValueError("'members' must be an object")
    for name, entry in members.items():
        _check_member_name(name)
        if not (isinstance(entry, dict) and _is_size(entry.get("size"))
                and isinstance(entry.get("sha256"), str) and _SHA256.fullmatch(entry["sha256"])):
            raise ValueError(f"member {name!r} must have an int 'size' and a hex 'sha256'")
    for name in REQUIRED_MEMBERS:
        if name not in members:
            raise ValueError(f"required member {name!r} is not listed")
    artefacts = m.get("artefacts")
    if not isinstance(artefacts, dict) or not all(isinstance(v, dict) for v in artefacts.values()):
        raise ValueError("'artefacts' must map names to objects")
    listed = {n[len(ARTEFACT_DIR):] for n in members if n.startswith(ARTEFACT_DIR)}
    if listed != set(artefacts):
        raise ValueError(f"artefact members {sorted(listed)} and artefact entries {sorted(artefacts)} differ")


def _check_member_name(name: str) -> None:
    """Version 1 knows these members and no others."""
    if name.startswith(ARTEFACT_DIR):
        check_artefact_name(name[len(ARTEFACT_DIR):])
    elif name not in (WEIGHTS, GRAPH, PLAN):
        raise ValueError(f"member {name!r} is not part of format version {FORMAT_VERSION}")


def _is_size(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0
