"""The `neve` command line.

    neve run [options] IMAGE [IMAGE...]     boot images (the first one's entry is where the CPU starts)
    neve bench [options]                    benchmarks (see neve/bench.py)

stdout carries the guest's UART bytes exactly and nothing else; neve's own messages
go to stderr.  Exit status: the guest's (0 after PSCI SYSTEM_OFF/SYSTEM_RESET, the code
of a semihosting exit), 2 for bad input or usage, 124 when --max-insns or --timeout is
exhausted, 125 when the guest does something neve does not emulate, 126 when the
guest wedges itself or neve fails internally.
"""
from __future__ import annotations

import argparse
import sys

from neve import errors
from neve.launch import add_run_options, build_machine
from neve.observe.trace import TraceWriter
from neve.errors import BadInput, NeveError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        self.exit(errors.EXIT_BAD_INPUT, f"neve: {message}\n")


def cmd_run(args) -> int:
    from neve.observe import stats as st
    from neve.devices.timer import CNTFRQ
    out = sys.stdout.buffer

    def uart(b: bytes) -> None:
        out.write(b)
        if b == b"\n":
            out.flush()

    m = build_machine(args, uart)
    tracer = TraceWriter(args.trace, m) if args.trace else None
    if args.timeline:
        from neve.observe.timeline import Timeline
        timeline = Timeline(m)
    for opt, path in (("--stats", args.stats), ("--timeline", args.timeline)):
        if path:
            try:
                open(path, "a").close()
            except OSError as e:
                raise BadInput(f"{opt} {path}: {e.strerror}") from None
    res = m.run()
    out.flush()
    if tracer:
        tracer.close()
    if args.timeline:
        timeline.write(args.timeline)
    if res.reason not in ("system-off", "system-reset", "semihosting-exit"):
        print(f"neve: {res.message}", file=sys.stderr)
    if args.stats:
        extra = {"policy": m.policy.describe()} if m.policy is not None else None
        st.write(args.stats, st.document(mode=m.mode, exit_reason=res.reason, status=res.status,
                                         instructions=m.icount(), stats=m.stats,
                                         counter=m.irq.counter.now(), wfi_skipped=m.irq.counter.skipped,
                                         frequency=CNTFRQ, extra=extra))
    return res.status


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="neve", description="Functional emulator of Arm nested virtualization (ARMv8.3 NV, NEVE, FEAT_NV2)")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)
    pr = sub.add_parser("run", help="boot ELF images")
    add_run_options(pr)
    from neve import bench
    bench.add_parser(sub)
    from neve.debug import debugger, gdbstub
    debugger.add_parser(sub, add_run_options)
    gdbstub.add_parser(sub, add_run_options)
    from neve.fuzz import cli as fuzz_cli
    fuzz_cli.add_parser(sub)
    try:
        args = p.parse_args(argv)
        if args.cmd is None:
            p.print_usage(sys.stderr)
            return errors.EXIT_BAD_INPUT
        if args.cmd == "run":
            return cmd_run(args)
        return args.func(args)
    except NeveError as e:
        print(f"neve: {e.message}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("neve: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
