"""`kaiyuan launch`: run a kaiyuan.comm job of N processes on this host (like torchrun).

    kaiyuan launch -n 4 script.py [args...]
    kaiyuan launch -n 2 --backend mpi -m package.module [args...]
"""

from __future__ import annotations

import argparse


class LaunchCommand:
    help = "start N ranks of a kaiyuan.comm script on this host (rank env like torchrun, shm rendezvous)"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("-n", "--nproc-per-node", "--nprocs", dest="nprocs", type=int, default=1,
                            help="number of ranks (processes) to start")
        parser.add_argument("--backend", default=None, choices=["shm", "mpi", "local"],
                            help="set $KAIYUAN_COMM_BACKEND (default: init_process_group's, shm)")
        parser.add_argument("--no-prefix", action="store_true", help="do not prefix output lines with [rank r]")
        parser.add_argument("-m", dest="module", action="store_true", help="run the target as a module (python -m)")
        parser.add_argument("script", help="the Python script (or module with -m)")
        parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")

    @staticmethod
    def run(args) -> int:
        from ..comm.launch import launch
        from ..runtime.errors import ArgumentError

        if args.nprocs < 1:
            raise ArgumentError(f"-n {args.nprocs}: need at least one rank")
        command = (["-m"] if args.module else []) + [args.script, *args.args]
        return launch(command, args.nprocs, backend=args.backend, prefix_output=not args.no_prefix)
