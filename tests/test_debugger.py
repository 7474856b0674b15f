"""`neve debug`: scripted sessions (the debugger is a cmd.Cmd with injectable stdout;
the command line runs -ex/--commands scripts without a terminal).

The guest is tinyhyp, a small guest hypervisor not written for neve
(firmware/tinyhyp/tinyhyp.S): at _start+0x5c it writes HCR_EL2 = RW|TSC with
`msr S3_4_C1_C1_0, x0`; its first ERET is the one ending its own SVC handler
(el2_sync+0x60).
"""
from __future__ import annotations

import io
import re

import pytest

from conftest import HYPERCALL, TINYHYP
from neve import cli
from neve.core import elf
from neve.debug.shell import Debugger
from neve.core.machine import Machine


def session(script: list[str], mode: str = "v8.3", images=(TINYHYP,)):
    holder = []
    m = Machine([elf.load(p) for p in images], mode=mode, uart_out=lambda b: holder[0].uart(b))
    out = io.StringIO()
    d = Debugger(m, stdout=out, echo=True)
    holder.append(d)
    d.run_script(script)
    return m, d, out.getvalue()


def test_breaks_on_hcr_el2_write_and_first_eret_with_reasons():
    m, d, out = session(["break trap HCR_EL2", "break trap eret", "continue", "continue"])
    assert d.errors == 0
    hcr, eret = out.split("(neve) continue")[1:3]
    # The HCR_EL2 write: instruction with symbol+offset, level, class, register, value, why.
    assert "trap" in hcr and "class sysreg" in hcr
    assert "0x4000005c <_start+0x5c>: msr hcr_el2, x0" in hcr
    assert "from   vEL2 (hardware EL1)" in hcr
    assert "HCR_EL2" in hcr and "write" in hcr and "0x80080000" in hcr
    assert "why    HCR_EL2.NV set by L0" in hcr
    assert "=> 0x40000060 <_start+0x60>: isb" in hcr
    # The first ERET: in tinyhyp's own SVC handler, at vEL2.
    assert "class eret" in eret
    assert "<el2_sync+0x60>: eret" in eret
    assert "from   vEL2 (hardware EL1)" in eret
    assert "why    HCR_EL2.NV set by L0: ERET at EL1 traps to EL2" in eret
    assert "=> 0x40000074 <svc_returns_here>" in eret       # where the emulated ERET returned
    # Guest output so far came out whole, line by line, before the stop report.
    assert "tinyhyp: el2 sync: ESR_EL2=0x000000005600002a" in eret


def test_setting_an_el2_register_from_the_debugger_takes_effect():
    """Setting SCTLR_EL2 (gdb's `set $SCTLR_EL2`) while vEL2 runs changes the regime
    vEL2 runs in at once, as an MSR at EL2 would (it used to change only the stored
    value); a read-only register cannot be set."""
    from neve.arch import sysregs
    from neve.debug.regview import set_sysreg_value
    m, d, out = session(["break trap eret", "continue"])
    assert m.vel2.active
    row = sysregs.BY_NAME["SCTLR_EL2"]
    i_cache = 1 << 12                                     # SCTLR.I, carried into the shadow SCTLR_EL1
    before = m.vel2.get("SCTLR_EL2")
    assert set_sysreg_value(m, row, before ^ i_cache)
    assert m.vel2.get("SCTLR_EL2") == before ^ i_cache
    assert m.cpu.cpr_read(*sysregs.BY_NAME["SCTLR_EL1"].key) & i_cache == (before ^ i_cache) & i_cache
    assert not set_sysreg_value(m, sysregs.BY_NAME["ICH_VTR_EL2"], 0)


def test_inspection_commands_after_a_stop():
    m, d, out = session(["break trap eret", "continue", "stepi", "x/4i", "regs", "sysregs vel2",
                         "sysregs nested", "sysregs shadow", "x/4x _start", "traps", "gic"])
    assert d.errors == 0
    assert "=> 0x40000078 <svc_returns_here+0x4>: b.ne #0x40000110 <fail>" in out      # stepi
    assert re.search(r"=> 0x40000078 <svc_returns_here\+0x4>: b\.ne .*\n   0x4000007c <svc_returns_here\+0x8>", out)
    assert "bl #0x40000800 <puts>" in out                                            # x/4i with symbols
    assert "x20 0000000000000001" in out                                            # regs
    assert "pstate 0x600003c9  EL2h" in out and "level vEL2" in out
    assert re.search(r"HCR_EL2 +0x0000000080080000", out)                           # sysregs vel2
    assert re.search(r"VBAR_EL2 +0x0000000040001000", out)
    assert re.search(r"ESR_EL2 +0x000000005600002a", out)
    assert re.search(r"ELR_EL1 +0x000000000ffff000 +carries ELR_EL2", out)          # shadow
    assert "0x40000000 <_start>:  0xd5034fdf" in out                               # x/4x
    assert re.search(r"eret +1\n", out) and "HCR_EL2:w 1" in out                    # traps
    assert "ICH_LR3_EL2" in out and "ICH_LR4_EL2" not in out                        # 4 LRs (ICH_VTR_EL2)


def test_page_in_nv2_mode():
    m, d, out = session(["break trap hvc", "continue", "page"], mode="nv2")
    assert d.errors == 0
    assert "VNCR page (FEAT_NV2)" in out
    assert re.search(r"\+0x078  HCR_EL2 +0x0000000080080000", out)
    assert re.search(r"\+0x110  SCTLR_EL1 +0x0000000030d00800", out)
    assert "HVC #0x11" in out and "L0 forwards it to vEL2" in out


def test_page_refused_outside_neve_and_nv2():
    m, d, out = session(["page"])
    assert d.errors == 1 and "no NEVE/VNCR page in v8.3 mode" in out


def test_address_breakpoint_switch_and_hypercall():
    m, d, out = session(["break guest_sync", "break switch", "break hypercall", "continue", "continue", "continue"])
    assert d.errors == 0
    stops = out.split("(neve) continue")[1:]
    assert "switch vEL2 -> EL1 (ERET)" in stops[0] and "=> 0x400019ec <guest>" in stops[0]
    assert "hypercall begin by nested-VM" in stops[1] and "switch EL1 -> vEL2 (HVC #0x11)" in stops[1]
    assert "breakpoint 1 at 0x4000181c <guest_sync>" in stops[2]
    assert "=> 0x4000181c <guest_sync>: sub sp, sp, #0x140" in stops[2]


def test_breakpoints_do_not_disturb_the_run():
    """Same guest output, traps and instruction count with and without stops; an MMIO
    trap breakpoint does not replay the UART store."""
    plain = Machine([elf.load(TINYHYP)], mode="v8.3", uart_out=lambda b: None)
    plain.run()
    m, d, out = session(["break trap mmio", "break el2_sync", "break guest_sync"] + ["continue"] * 400
                        + ["delete", "continue"])
    assert m.result.reason == "system-off"
    assert m.transcript == plain.transcript
    assert m.stats.total == plain.stats.total
    # Stopping right after an emulated MRS avoids the one-instruction overcount Unicorn
    # makes when the TB continues after it, so allow that much.
    assert abs(m.icount() - plain.icount()) <= 8


def test_unknown_commands_and_bad_addresses_are_errors():
    m, d, out = session(["frobnicate", "break nosuchsymbol", "x/4q 0", "stepi 0"])
    assert d.errors == 4
    assert "unknown command 'frobnicate'" in out and "no symbol 'nosuchsymbol'" in out


def test_continue_to_exit_then_refuses():
    m, d, out = session(["continue", "continue"], mode="vm", images=(HYPERCALL,))
    assert "guest exited: system-off (status 0)" in out
    assert "the guest has exited" in out
    assert "hypercall: 32 calls, all returned NOT_SUPPORTED" in out


def test_command_line_ex_and_commands_file(tmp_path, capsys):
    script = tmp_path / "cmds"
    script.write_text("# comment\nbreak trap HCR_EL2\ncontinue\n")
    rc = cli.main(["debug", "--mode", "v8.3", "--commands", str(script), "-ex", "regs", "-ex", "quit",
                   "-ex", "sysregs vel2", TINYHYP])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.index("(neve) break trap HCR_EL2") < out.index("(neve) continue") < out.index("(neve) regs")
    assert "why    HCR_EL2.NV set by L0" in out
    assert "(neve) sysregs" not in out                   # quit ended the script


def test_command_line_uart_to_file_and_error_status(tmp_path, capsys):
    uart = tmp_path / "uart.txt"
    rc = cli.main(["debug", "--mode", "v8.3", "--uart", str(uart), "-ex", "continue", "-ex", "bogus", TINYHYP])
    out = capsys.readouterr().out
    assert rc == 1                                        # a command failed
    assert "guest exited: system-off" in out and "tinyhyp: hello" not in out
    assert uart.read_text().startswith("tinyhyp: hello\n")


def test_interactive_session_from_injected_stdin():
    m = Machine([elf.load(TINYHYP)], mode="v8.3", uart_out=lambda b: None)
    out = io.StringIO()
    d = Debugger(m, stdin=io.StringIO("break trap eret\ncontinue\nquit\n"), stdout=out)
    d.cmdloop()
    assert "(neve) " in out.getvalue() and "class eret" in out.getvalue()


@pytest.mark.parametrize("spec,ok", [("eret", True), ("ERET", True), ("HCR_EL2:w", True), ("HCR_EL2:r", False),
                                     ("hvc", False), ("sysreg", True), ("", True)])
def test_trap_spec_matching(spec, ok):
    from neve.observe import events as ev
    from neve.debug.stops import trap_matches
    t = ev.Trap(1, 1, 0, "vEL2", 1, ev.SYSREG if "HCR" in spec or spec in ("sysreg", "") else ev.ERET,
                "HCR_EL2" if "HCR" in spec or spec in ("sysreg", "") else "ERET", "w")
    assert trap_matches(spec, t) is ok


def test_cpus_and_cpu_with_smp():
    """--smp 2: `cpus` lists each CPU (power, level, PC; `*` the one that stopped),
    `cpu N` shows another CPU's registers, and continue goes on with the CPU that ran:
    the run's transcript and count are those of a plain run."""
    from conftest import IMAGES
    holder = []
    ipi = IMAGES / "ipi.elf"
    m = Machine([elf.load(ipi)], mode="vm", uart_out=lambda b: holder[0].uart(b), smp=2)
    out = io.StringIO()
    d = Debugger(m, stdout=out, echo=True)
    holder.append(d)
    d.run_script(["cpus", "break secondary_main", "continue", "cpus", "cpu 0", "regs", "cpu 2", "cpu 1", "regs",
                  "cpu 0", "continue"])
    text = out.getvalue()
    assert d.errors == 1 and "error: no cpu 2 (the board has 2)" in text
    first, after = text.split("(neve) break secondary_main")
    assert re.search(r">\* cpu 0  affinity 0x0  on\s+EL1  0x44000000 <_start>", first), first
    assert re.search(r"   cpu 1  affinity 0x1  off", first), first
    listing = after.split("(neve) cpus")[1].split("(neve) cpu 0")[0]
    assert re.search(r"   cpu 0  affinity 0x0  on\s+EL1  0x[0-9a-f]+ <fw_main", listing), listing
    assert re.search(r">\* cpu 1  affinity 0x1  on\s+EL1  0x[0-9a-f]+ <secondary_main>", listing), listing
    regs0, regs1 = after.split("(neve) regs")[1:3]
    assert "<fw_main" in regs0 and ", cpu 0" in regs0
    assert "pc  " in regs1 and "<secondary_main>" in regs1 and ", cpu 1" in regs1
    assert "x0  0000000000000001" in regs1           # CPU_ON's context id
    assert "ipi: PASS" in text and m.result.reason == "system-off"
    plain = Machine([elf.load(ipi)], mode="vm", uart_out=lambda b: None, smp=2)
    plain.run()
    assert bytes(plain.transcript) == bytes(m.transcript) and plain.icount() == m.icount()
