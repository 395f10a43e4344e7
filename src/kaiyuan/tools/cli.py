"""The `kaiyuan` command (also `python -m kaiyuan`).

Subcommands are listed in COMMANDS as "module:object" and imported only when used, so
`kaiyuan --version` stays fast and a later feature adds a command with one line here. A
command object has `help` (one line), `add_arguments(parser)` and `run(args) -> int`.
User errors print the KaiyuanError text (code, message, hint) and exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from ..runtime.errors import KaiyuanError

COMMANDS: dict[str, str] = {
    "devices": "kaiyuan.tools.cli:DevicesCommand",
    "compile": "kaiyuan.tools.cli_graph:CompileCommand",
    "run": "kaiyuan.tools.cli_graph:RunCommand",
    "launch": "kaiyuan.tools.cli_comm:LaunchCommand",
    "comm-sim": "kaiyuan.tools.cli_commsim:CommSimCommand",
}


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as dist_version

    try:
        return dist_version("kaiyuan")
    except PackageNotFoundError:
        return "0.1.0"


def load_command(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def build_parser(commands: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kaiyuan", description="kaiyuan: an open, vendor-neutral AI compute stack")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in commands.items():
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--version" in argv[:1]:
        print(f"kaiyuan {version()}")
        return 0
    try:
        parser = build_parser({name: load_command(spec) for name, spec in COMMANDS.items()})
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return int(load_command(COMMANDS[args.command]).run(args) or 0)
    except KaiyuanError as e:
        print(str(e), file=sys.stderr)
        return 2


class DevicesCommand:
    """`kaiyuan devices`: every known device, present or absent and why (like ky.devices())."""

    help = "list devices: which are available, and why the others are absent"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    @staticmethod
    def run(args) -> int:
        from ..runtime.registry import devices

        rows = devices()
        caps = {r.name: _capabilities(r) for r in rows}
        if args.json:
            print(json.dumps([{**row.__dict__, "capabilities": caps[row.name]} for row in rows], indent=2, default=str))
            return 0
        table = [(r.name, "available" if r.available else "absent", _detail(r)) for r in rows]
        widths = [max(len(row[i]) for row in table + [("DEVICE", "STATUS", "")]) for i in range(2)]
        print(f"{'DEVICE':<{widths[0]}}  {'STATUS':<{widths[1]}}  DETAILS")
        for name, status, detail in table:
            print(f"{name:<{widths[0]}}  {status:<{widths[1]}}  {detail}")
            if caps[name]:
                print(f"{'':<{widths[0]}}  {'':<{widths[1]}}  capabilities: {_caps_text(caps[name])}")
        return 0


def _detail(row) -> str:
    if not row.available:
        return row.reason or ""
    return ", ".join(f"{k}={v}" for k, v in row.properties.items())


def _capabilities(row) -> dict | None:
    """The device's `Capabilities` as a dict (None for an absent device, or one that fails to say)."""
    import dataclasses

    from ..runtime.registry import get_device

    if not row.available:
        return None
    try:
        return dataclasses.asdict(get_device(row.name).capabilities)
    except Exception:  # a backend's bug here must not hide the device list
        return None


def _caps_text(c: dict) -> str:
    floats = " ".join(f for f in ("float16", "bfloat16", "float64") if c.get(f))
    return (f"vector {c['vector_width_bits']} bits, local memory {c['local_memory_bytes']} B, "
            f"{c['max_program_lanes']} lane(s)/program, matrix unit {c['matrix_unit'] or 'none'}, "
            f"atomics {','.join(c['atomics']) or 'none'}, {floats or 'float32 only'}")
