import json
import subprocess
import sys

import pytest

from kaiyuan.runtime.errors import DeviceError
from kaiyuan.tools import cli


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kaiyuan ") and out.split()[1][0].isdigit()


def test_devices_table_lists_cpu(capsys):
    assert cli.main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["DEVICE", "STATUS"]
    cpu = [line for line in lines if line.split()[0] == "cpu"]
    assert cpu and cpu[0].split()[1] in ("available", "absent")
    npusim = [line for line in lines if line.split()[0] == "npusim"][0]
    assert "absent" in npusim and npusim.split(None, 2)[2]  # absent rows say why


def test_devices_json(capsys):
    assert cli.main(["devices", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {row["name"]: row for row in rows}
    assert "cpu" in names and set(names["cpu"]) == {"name", "available", "reason", "properties", "capabilities"}
    interp = names["interp"]  # always present: its capability flags come with it
    assert interp["available"] and isinstance(interp["capabilities"]["vector_width_bits"], int)
    assert names["npusim"]["capabilities"] is None  # absent devices have none


def test_devices_table_shows_capabilities(capsys):
    assert cli.main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[0] == "interp")
    assert lines[at + 1].split()[0] == "capabilities:" and "vector" in lines[at + 1] and "atomics" in lines[at + 1]


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 0
    assert "devices" in capsys.readouterr().out


def test_kaiyuan_error_exits_2_without_traceback(monkeypatch, capsys):
    def fail(args):
        raise DeviceError("device 'x' is not available", hint="see kaiyuan devices")

    monkeypatch.setattr(cli.DevicesCommand, "run", staticmethod(fail))
    assert cli.main(["devices"]) == 2
    err = capsys.readouterr().err
    assert "[KY-E500]" in err and "hint: see kaiyuan devices" in err and "Traceback" not in err


def test_commands_are_extensible(monkeypatch, capsys):
    class Hello:
        help = "say hello"

        @staticmethod
        def add_arguments(parser):
            parser.add_argument("name")

        @staticmethod
        def run(args):
            print(f"hello {args.name}")
            return 3

    monkeypatch.setattr(sys.modules[__name__], "Hello", Hello, raising=False)
    monkeypatch.setitem(cli.COMMANDS, "hello", f"{__name__}:Hello")
    assert cli.main(["hello", "ky"]) == 3
    assert capsys.readouterr().out == "hello ky\n"


def test_python_dash_m_kaiyuan():
    out = subprocess.run([sys.executable, "-m", "kaiyuan", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("kaiyuan ")
