"""The `neve` command line.

    neve run [options] IMAGE [IMAGE...]     boot images (the first one's entry is where the CPU starts)
    neve bench [options]                    benchmarks (see neve/bench/)

stdout carries the guest's UART bytes exactly and nothing else; neve's own messages
go to stderr.  Exit status: the guest's (0 after PSCI SYSTEM_OFF/SYSTEM_RESET, the code
of a semihosting exit), 2 for bad input or usage, 124 when --max-insns or --timeout is
exhausted, 125 when the guest does something neve does not emulate, 126 when the
guest wedges itself or neve fails internally.
"""
from __future__ import annotations

import importlib
import sys

from neve import errors
from neve.launch import Parser, add_run_options, cmd_run, guarded

# The commands beside `run`, by the module that defines them (its add_parser).  Only
# the one named on the command line is imported (all of them for `neve --help` or a
# mistake), so that `neve run` does not pay for the benchmark, debugger and fuzzer
# modules at start-up, which `neve bench` measures.  Lazy for speed, not to dodge an
# import circle: tests/test_layout.py checks there is none.
COMMANDS = {"bench": "neve.bench.cli", "debug": "neve.debug.shell", "gdb": "neve.debug.gdb",
            "fuzz": "neve.fuzz.cli"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = Parser(prog="neve", description="Functional emulator of Arm nested virtualization (ARMv8.3 NV, NEVE, FEAT_NV2)")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=Parser)
    pr = sub.add_parser("run", help="boot ELF images")
    add_run_options(pr)
    first = argv[0] if argv else None
    wanted = [] if first == "run" else [first] if first in COMMANDS else list(COMMANDS)
    for name in wanted:
        importlib.import_module(COMMANDS[name]).add_parser(sub)
    args = p.parse_args(argv)
    if args.cmd is None:
        p.print_usage(sys.stderr)
        return errors.EXIT_BAD_INPUT
    return guarded(cmd_run if args.cmd == "run" else args.func, args)
