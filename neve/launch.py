"""From command-line options to a Machine: the run options shared by `neve run`,
`neve debug` and `neve gdb`, the function that builds the board from them, and `neve
run` itself (`cmd_run`; `run_main` for a caller that has its argument list, as the
fuzzer's forked children)."""
from __future__ import annotations

import argparse
import math
import sys

from neve import boot
from neve.arch.platform import RAM_SIZE_DEFAULT
from neve.core import elf
from neve.core.machine import MAX_SMP, MODES, QUANTUM, Machine
from neve.el2 import policy
from neve import errors
from neve.devices import uart_input
from neve.devices.timer import CNTFRQ
from neve.errors import BadInput, NeveError
from neve.observe import stats as st
from neve.observe.timeline import Timeline
from neve.observe.trace import TraceWriter


def _size(s: str) -> int:
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    try:
        if s[-1].lower() in mult:
            return int(s[:-1], 0) * mult[s[-1].lower()]
        return int(s, 0)
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"bad size {s!r}") from None


def _positive_int(s: str) -> int:
    try:
        v = int(s, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {s!r}")
    return v


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"not a finite number: {s!r}")
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {s!r}")
    return v


def _epoch(s: str) -> int:
    try:
        v = int(s, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None
    if not 0 <= v < 1 << 32:
        raise argparse.ArgumentTypeError(f"out of range (0 to 2^32 - 1): {s!r}")
    return v


def _ticks(s: str) -> int:
    try:
        v = int(s, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None
    if not 0 <= v < 1 << 63:
        raise argparse.ArgumentTypeError(f"out of range (0 to 2^63 - 1): {s!r}")
    return v


def _address(s: str) -> int:
    try:
        v = int(s, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address: {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"not an address: {s!r}")
    return v


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=MODES, default=None,
                   help="vm: the image is a kernel at EL1 with neve as its hypervisor; v8.3/neve/nv2: the image is "
                        "a guest hypervisor entered at virtual EL2 (default: vm, or the --policy file's base)")
    p.add_argument("--policy", metavar="FILE.toml",
                   help="reclassify registers (trap/redirect/memory) on top of a nested mode; see the README")
    p.add_argument("--ram", type=_size, default=RAM_SIZE_DEFAULT, metavar="SIZE", help="RAM size (default 128M)")
    p.add_argument("--max-insns", type=_positive_int, metavar="N", help="stop after N guest instructions (exit 124)")
    p.add_argument("--timeout", type=_positive_float, metavar="S", help="stop after S seconds of host time (exit 124)")
    p.add_argument("--smp", type=_positive_int, default=1, metavar="N",
                   help=f"CPUs (1 to {MAX_SMP}, default 1; --mode vm): CPU 0 starts, the others wait for PSCI CPU_ON")
    p.add_argument("--quantum", type=_positive_int, default=QUANTUM, metavar="N",
                   help=f"with --smp: guest instructions a CPU runs before the next one's turn (default {QUANTUM:,}); "
                        "a WFI ends a turn early")
    p.add_argument("--stats", metavar="FILE.json", help="write run statistics (schema in the README)")
    p.add_argument("--trace", metavar="FILE.jsonl", help="write one JSON line per trap")
    p.add_argument("--timeline", metavar="FILE.json", help="write a Chrome trace-event timeline of the world "
                   "switches (opens in Perfetto; see neve/observe/timeline.py)")
    p.add_argument("--pflash", action="append", default=[], metavar="FILE",
                   help="back a CFI flash bank with FILE (exactly 64 MiB; writes and erases reach it): unit 0, "
                        "then unit 1 (with --bios, bank 0 holds the bios and the first --pflash is unit 1)")
    p.add_argument("--rtc-epoch", type=_epoch, default=0, metavar="SECONDS",
                   help="the PL031 RTC's count at virtual time 0, in seconds since 1970 (default 0); "
                        "it advances with virtual time (the system counter)")
    p.add_argument("--power-button-at", type=_ticks, default=None, metavar="TICKS",
                   help="press the gpio-keys power button (PL061 GPIO 3) when the system counter reaches TICKS "
                        "(1 GHz: nanoseconds of virtual time); released 100 ms later, as QEMU's")
    p.add_argument("--uart-input", metavar="FILE",
                   help="bytes the guest's PL011 receives, delivered when the guest polls an empty receive FIFO "
                        "or waits in WFI for it (reproducible); default for `neve run`: stdin when it is a "
                        "terminal (raw mode, Ctrl-A x quits, Ctrl-A h for help) or a pipe")
    g = p.add_argument_group("booting as QEMU's -M virt does (neve/boot/)")
    g.add_argument("--kernel", metavar="FILE", help="the kernel: an ELF, an arm64 Linux Image (gzip-compressed or "
                   "not) or a raw binary, placed and started as QEMU's -kernel")
    g.add_argument("--initrd", metavar="FILE", help="initial RAM disk for a Linux kernel (as QEMU's -initrd)")
    g.add_argument("--append", metavar="STR", help="kernel command line: /chosen/bootargs (as QEMU's -append)")
    g.add_argument("--dtb", metavar="FILE", help="use this device tree blob instead of the generated one")
    g.add_argument("--bios", metavar="FILE", help="firmware in flash bank 0, started at address 0 (as QEMU's -bios)")
    g.add_argument("--kernel-addr", type=_address, metavar="ADDR",
                   help="load address of a raw-binary --kernel (default: RAM base + 0x80000, as QEMU)")
    g.add_argument("--dumpdtb", metavar="FILE", help="write the device tree the guest would get to FILE and exit "
                   "(as QEMU's -machine dumpdtb=FILE)")
    g.add_argument("--symbols", metavar="SYSTEM.MAP", help="the --kernel Image's System.map: traps, traces, the "
                   "timeline and the debugger name the kernel's code, at every EL it runs at (tools/guests.sh "
                   "extracts Debian's as guests/System.map)")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="ELF64 AArch64 images (the first one's entry is where "
                   "the CPU starts, unless --kernel or --bios is given)")


def build_machine(args, uart_out=None):
    if args.ram < (1 << 20) or args.ram > (2 << 30) or args.ram % 4096:
        raise BadInput(f"--ram {args.ram:#x}: must be a multiple of 4 KiB between 1 MiB and 2 GiB")
    pol = None
    if getattr(args, "policy", None):
        pol = policy.load(args.policy)
        if args.mode is None:
            args.mode = pol.base
        elif args.mode != pol.base:
            raise BadInput(f"--policy {args.policy} has base {pol.base!r}; use --mode {pol.base} or drop --mode")
    if args.mode is None:
        args.mode = "vm"
    dump = getattr(args, "dumpdtb", None)
    kernel, bios = getattr(args, "kernel", None), getattr(args, "bios", None)
    first, how = boot.prepare(kernel=kernel, initrd=getattr(args, "initrd", None),
                              append=getattr(args, "append", None), dtb=getattr(args, "dtb", None), bios=bios,
                              kernel_addr=getattr(args, "kernel_addr", None), ram_size=args.ram,
                              dump_only=bool(dump))
    if not args.images and kernel is None and bios is None and not dump:
        raise BadInput("nothing to run: give an ELF image, --kernel FILE or --bios FILE")
    images = first + [elf.load(p) for p in args.images]
    uart_in = uart_input.open_input(args.uart_input) if getattr(args, "uart_input", None) and not dump else None
    # Flash units: with a bios, bank 0 holds it and the --pflash files start at unit 1.
    units = ([None] if bios else []) + list(getattr(args, "pflash", None) or [])
    try:
        if len(units) > 2:
            raise BadInput("--pflash: the board has two flash banks" + (" (bank 0 holds the --bios image)"
                                                                         if bios else ""))
        m = Machine(images, mode=args.mode, ram_size=args.ram, max_insns=args.max_insns, timeout=args.timeout,
                    uart_out=uart_out, policy=pol, boot=how, uart_in=uart_in, pflash=tuple(units),
                    rtc_epoch=getattr(args, "rtc_epoch", 0),
                    power_button_at=getattr(args, "power_button_at", None), smp=getattr(args, "smp", 1),
                    quantum=getattr(args, "quantum", QUANTUM))
    except BaseException:
        if uart_in is not None:
            uart_in.close()                 # a terminal's settings back, the descriptor closed
        raise
    if getattr(args, "symbols", None):
        if how is None or how.kernel_pa is None:
            raise BadInput("--symbols is for the System.map of an arm64 Linux Image given with --kernel")
        m.symbols.add_kernel_map(elf.read_system_map(args.symbols), how.kernel_pa)
        m.stats.by_symbol = True
    if dump:
        # As QEMU's -machine dumpdtb: write the tree the guest would get, and exit.
        try:
            with open(dump, "wb") as f:
                f.write(m.dtb)
        except OSError as e:
            raise BadInput(f"--dumpdtb {dump}: {e.strerror}") from None
        raise SystemExit(0)
    return m


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        self.exit(errors.EXIT_BAD_INPUT, f"neve: {message}\n")


def stdout_uart():
    """The guest's UART on stdout, flushed at each newline: stdout carries the guest's
    bytes exactly and nothing else."""
    out = sys.stdout.buffer

    def uart(b: bytes) -> None:
        out.write(b)
        if b == b"\n":
            out.flush()
    return uart


def cmd_run(args) -> int:
    m = build_machine(args, stdout_uart())
    if m.uart.source is None:
        m.uart.source = uart_input.stdin_input()     # a terminal (raw mode from here) or a pipe
    try:
        return _run(m, args)
    finally:
        if m.uart.source is not None:
            m.uart.source.close()                   # the terminal's settings back


def _run(m: Machine, args) -> int:
    tracer = TraceWriter(args.trace, m) if args.trace else None
    if args.timeline:
        timeline = Timeline(m)
    for opt, path in (("--stats", args.stats), ("--timeline", args.timeline)):
        if path:
            try:
                open(path, "a").close()
            except OSError as e:
                raise BadInput(f"{opt} {path}: {e.strerror}") from None
    res = m.run()
    sys.stdout.buffer.flush()
    if tracer:
        tracer.close()
    if args.timeline:
        timeline.write(args.timeline)
    if res.reason not in ("system-off", "system-reset", "semihosting-exit"):
        print(f"neve: {res.message}", file=sys.stderr)
    if args.stats:
        extra = {"policy": m.policy.describe()} if m.policy is not None else {}
        if len(m.vcpus) > 1:
            extra["cpus"] = {"count": len(m.vcpus), "quantum": m.quantum,
                             "instructions": [v.cpu.own_icount() for v in m.vcpus]}
        st.write(args.stats, st.document(mode=m.mode, exit_reason=res.reason, status=res.status,
                                         instructions=m.icount(), stats=m.stats,
                                         counter=m.irq.counter.now(), wfi_skipped=m.irq.counter.skipped,
                                         frequency=CNTFRQ, extra=extra))
    return res.status


def guarded(fn, args) -> int:
    """Run a command: neve's errors become one line on stderr and their exit code."""
    try:
        return fn(args)
    except NeveError as e:
        print(f"neve: {e.message}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("neve: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def run_main(argv: list[str]) -> int:
    """`neve run ARGV...` (argv without the word "run")."""
    p = Parser(prog="neve run")
    add_run_options(p)
    return guarded(cmd_run, p.parse_args(argv))
