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

import sys

from neve import errors
from neve.bench import cli as bench
from neve.debug import gdb, shell
from neve.fuzz import cli as fuzz_cli
from neve.launch import Parser, add_run_options, cmd_run, guarded


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="neve", description="Functional emulator of Arm nested virtualization (ARMv8.3 NV, NEVE, FEAT_NV2)")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=Parser)
    pr = sub.add_parser("run", help="boot ELF images")
    add_run_options(pr)
    bench.add_parser(sub)
    shell.add_parser(sub, add_run_options)
    gdb.add_parser(sub, add_run_options)
    fuzz_cli.add_parser(sub)
    args = p.parse_args(argv)
    if args.cmd is None:
        p.print_usage(sys.stderr)
        return errors.EXIT_BAD_INPUT
    return guarded(cmd_run if args.cmd == "run" else args.func, args)
