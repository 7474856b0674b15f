"""Linux's KVM as the guest hypervisor (issue 15): Debian's 6.12 kernel boots at virtual
EL2, brings KVM up, and its init (tools/initramfs/kvm-init, in guests/kvm-initrd.gz that
tools/guests.sh builds) runs tools/vmm, our small KVM VMM, with images/hypercall.elf as
the nested VM (and images/gicdread.elf, whose GIC distributor reads KVM's vGIC serves in
the host kernel, images/mmio.elf, whose UART reads the VMM serves in user space,
images/virteoi.elf, which sends itself SGIs, and images/vtimer.elf, under KVM's
in-kernel vGICv3).  The transcript (the init script's lines and the nested VM's, which the
VMM prints from its UART exits) must equal QEMU 10's for the same files at real EL2
(`virtualization=on`), and the traps per nested hypercall, counted from what ran, must
order as the paper's table does: neve < nv2 < v8.3.  With the kernel's System.map
(`--symbols`), the traps of a call are named by the kernel code they come from.

Marked `linux` (three boots of the kernel on neve, about 10 s each)."""
from __future__ import annotations

import functools
import re
import json
import subprocess

import pytest

from conftest import guest, need_qemu, run_neve

APPEND = "console=ttyAMA0 panic=-1"
NESTED = ("gicdread: ", "hypercall: ", "ipi: ", "mmio: ", "virteoi: ", "vtimer: ", "init: ")

pytestmark = [pytest.mark.linux, pytest.mark.qemu]


def transcript(out: bytes) -> list[str]:
    """The init script's lines and the nested VM's (the kernel's own log left out)."""
    return [ln for ln in out.decode("utf-8", "replace").splitlines() if ln.startswith(NESTED)]


@functools.lru_cache(maxsize=None)
def qemu_transcript(append: str = APPEND) -> tuple[str, ...]:
    from neve.qemu import boot_command
    need_qemu()
    cmd = boot_command(kernel=guest("vmlinuz"), initrd=guest("kvm-initrd.gz"), append=append, el2=True)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    return tuple(transcript(p.stdout))


def test_the_vmm_runs_the_nested_vm_on_qemu():
    """The reference: on QEMU at EL2, Linux's KVM and the VMM run hypercall.elf to its
    PSCI SYSTEM_OFF, which ends the VMM with status 0."""
    lines = list(qemu_transcript())
    assert "init: kvm log: Hyp nVHE mode initialized successfully" in lines, lines
    i = lines.index("init: vmm gicdread.elf")
    # KVM's vGICv3 answers for the distributor: GICD_PIDR2 of a GICv3.
    assert lines[i + 1:i + 4] == ["gicdread: starting 32 reads of GICD_PIDR2 at 0x0800ffe8",
                                  "gicdread: 32 reads, all 0x0000003b, ArchRev 3 (GICv3)",
                                  "init: vmm exit status 0"], lines
    i = lines.index("init: vmm hypercall.elf")
    assert lines[i + 1:i + 5] == ["hypercall: starting 32 calls of function 0x87000000",
                                  "hypercall: 32 calls, all returned NOT_SUPPORTED",
                                  "hypercall: x0 after the last call = 0xffffffffffffffff",
                                  "init: vmm exit status 0"], lines
    # ipi.elf: a two-vCPU nested VM (tools/vmm -c 2); KVM answers its PSCI CPU_ON and
    # carries its SGIs from one vCPU to the other.
    assert lines[i + 5:i + 12] == ["init: vmm ipi.elf", "ipi: CPU_ON of cpu 1: 0",
                                   "ipi: cpu 1 up; 32 round trips of SGI 1 to cpu 1, SGI 2 back",
                                   "ipi: pings 32, pongs 32, unexpected 0", "ipi: PASS",
                                   "init: vmm exit status 0", "init: vmm mmio.elf"], lines
    assert lines[i + 12:i + 15] == ["mmio: starting 32 reads of UARTFR at 0x09000018",
                                    "mmio: 32 reads, all 0x00000000, TXFF clear", "init: vmm exit status 0"], lines
    assert lines[i + 15] == "init: vmm virteoi.elf", lines
    # virteoi.elf finds no kvmlike injection call (0x86000001 is KVM's PTP call, which
    # answers NOT_SUPPORTED here) and sends itself SGIs, which KVM's vGIC injects.
    assert "virteoi: rounds: 16 interrupts, INTID 1, 0 unexpected" in lines, lines
    assert "virteoi: burst: 6 interrupts, INTID mask 0x00fc, 0 unexpected" in lines, lines
    i = lines.index("init: vmm vtimer.elf")
    assert lines[i - 2:i] == ["virteoi: PASS", "init: vmm exit status 0"], lines
    # vtimer.elf programs the GIC itself (KVM's in-kernel vGICv3) and takes its timer.
    assert "vtimer: 10 virtual timer interrupts (INTID 27), 0 other, 0 without ISTATUS" in lines, lines
    assert lines[-3:] == ["vtimer: PASS", "init: vmm exit status 0", "init: done"], lines


def test_linux_kvm_runs_the_nested_vm_in_each_nested_mode(tmp_path):
    """hypercall.elf alone (neve.vm=, as neve bench's row runs it): its 32 calls are the
    only hypercalls of a nested VM."""
    append = APPEND + " neve.vm=hypercall.elf"
    per_call = {}
    for mode in ("v8.3", "neve", "nv2"):
        stats = tmp_path / f"{mode}.json"
        symbols = ["--symbols", guest("System.map")] if mode == "v8.3" else []
        r = run_neve("run", "--mode", mode, "--kernel", guest("vmlinuz"), "--initrd", guest("kvm-initrd.gz"),
                     "--append", append, "--stats", stats, "--timeout", "900", *symbols, timeout=1000)
        out = r.stdout.decode("utf-8", "replace")
        assert r.returncode == 0, (mode, r.stderr.decode()[-2000:], out[-3000:])
        assert transcript(r.stdout) == list(qemu_transcript(append)), (mode, out[-3000:])
        assert "init: vmm hypercall.elf" in transcript(r.stdout) and "init: vmm mmio.elf" not in transcript(r.stdout)
        h = json.loads(stats.read_text())["hypercalls"]
        # The nested VM's 32 calls, each a round trip through KVM's EL2 code and back,
        # the same number of traps every time (the SYSTEM_OFF call never returns).
        assert (h["guest"], h["count"]) == ("nested-VM", 32), (mode, h)
        tpc = h["traps_per_call"]
        assert tpc["min"] == tpc["max"] > 0, (mode, tpc)
        assert sum(h["median_call"]["by_class"].values()) == tpc["median"], (mode, h)
        assert h["median_call"]["by_class"]["hvc"] >= 1 and h["median_call"]["by_class"]["eret"] >= 1, (mode, h)
        per_call[mode] = tpc["median"]
        if symbols:
            # Where the traps of a call are, by the kernel's own symbols (System.map from
            # its kallsyms): the nVHE hypervisor's world switch at EL2 (its code runs at
            # hypervisor VAs, named through their physical addresses), and the host
            # kernel's HVC into it at EL1.
            by_sym = h["median_call"]["by_symbol"]
            assert sum(by_sym.values()) == tpc["median"], by_sym
            # The two ERETs too (to the host kernel, to the nested VM), which the
            # hypervisor runs at its own VAs, not at the PA neve found them at.
            for name in ("__kvm_nvhe___kvm_vcpu_run", "__kvm_nvhe___guest_exit", "__kvm_nvhe___sysreg_save_state_nvhe",
                         "kvm_arm_vcpu_enter_exit", "__kvm_nvhe___guest_enter",
                         "__kvm_nvhe___host_enter_without_restoring"):
                assert by_sym.get(name, 0) >= 1, (name, by_sym)
            assert by_sym.get("?") == 1, by_sym         # the nested VM's HVC: not the kernel's code
            in_hyp = sum(n for k, n in by_sym.items() if k.startswith("__kvm_nvhe_"))
            assert in_hyp > tpc["median"] // 2, by_sym
        else:
            assert "by_symbol" not in h["median_call"]
    assert per_call["neve"] < per_call["nv2"] < per_call["v8.3"], per_call


@pytest.mark.parametrize("content, message", [
    (b"", "no _text symbol (not a Linux System.map)"),
    (b"ffff800080000000 T\n", "line 1 is not ADDRESS TYPE NAME (a System.map)"),
    (b"zzzz T _text\n", "line 1: 'zzzz' is not a hexadecimal address"),
])
def test_symbols_refuses_what_is_not_a_system_map(tmp_path, content, message):
    bad = tmp_path / "System.map"
    bad.write_bytes(content)
    r = run_neve("run", "--kernel", guest("vmlinuz"), "--symbols", bad, "--max-insns", "1000")
    assert r.returncode == 2
    assert r.stderr.decode().strip() == f"neve: --symbols {bad}: {message}"


def test_symbols_needs_a_linux_image(tmp_path):
    from conftest import IMAGES
    good = tmp_path / "System.map"
    good.write_text("ffff800080000000 T _text\n")
    r = run_neve("run", IMAGES / "hello.elf", "--symbols", good)
    assert r.returncode == 2
    assert r.stderr.decode().strip() == "neve: --symbols is for the System.map of an arm64 Linux Image given with --kernel"


ROWS = "hypercall-linux,device-io-linux,device-io-kernel-linux,virtual-eoi-linux,timer-interrupt-linux"


def test_bench_hypercall_linux_row(tmp_path):
    """`neve bench --benchmarks ROWS`: the nested VM's hypercalls, device reads (served
    by the VMM in user space, and by KVM's vGIC in the host kernel), virtual EOIs and
    timer interrupts under Linux's KVM, counted per operation from the run (each
    counted), fewer traps and fewer modeled cycles in neve than in v8.3; vm mode has
    no such rows."""
    import os
    import sys
    from conftest import ROOT
    guest("vmlinuz"), guest("kvm-initrd.gz")
    js = tmp_path / "b.json"
    p = subprocess.run([sys.executable, "-m", "neve", "bench", "--quick", "--no-progress", "--benchmarks",
                        ROWS, "--modes", "vm,v8.3,neve", "--json", str(js)], cwd=ROOT,
                       capture_output=True, text=True, timeout=1200, env=dict(os.environ, COLUMNS="200"))
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads(js.read_text())
    assert not doc["errors"], doc["errors"]
    rows = {r["mode"]: r for r in doc["rows"] if r["benchmark"] == "hypercall-linux"}
    assert set(rows) == {"v8.3", "neve"}
    for r in rows.values():
        assert r["ops"] == 32 and r["deterministic"]
        assert r["traps_per_op"] == r["traps_per_op_min"] == r["traps_per_op_max"] == sum(r["by_class"].values())
    assert rows["neve"]["traps_per_op"] < rows["v8.3"]["traps_per_op"]
    assert rows["neve"]["modeled_cycles"] < rows["v8.3"]["modeled_cycles"]
    # The device read: a stage-2 abort to L1, KVM's MMIO exit to the VMM in user space,
    # and back; as many as mmio.elf makes (32), each a full round trip through KVM.
    io = {r["mode"]: r for r in doc["rows"] if r["benchmark"] == "device-io-linux"}
    assert set(io) == {"v8.3", "neve"}
    for r in io.values():
        assert r["ops"] == 32 and r["deterministic"] and r["by_class"].get("abort") == 1, r
    assert io["neve"]["traps_per_op"] < io["v8.3"]["traps_per_op"]
    # The distributor read KVM serves in the kernel: the same abort, no trip to user
    # space (one HVC and two ERETs: the nested VM's abort, KVM's exit to the host
    # kernel's handler, and back), so fewer traps than the VMM's UART read.
    ki = {r["mode"]: r for r in doc["rows"] if r["benchmark"] == "device-io-kernel-linux"}
    assert set(ki) == {"v8.3", "neve"}
    for mode, r in ki.items():
        assert r["ops"] == 32 and r["deterministic"] and r["by_class"].get("abort") == 1, r
        assert r["by_class"]["eret"] == 2 and r["by_class"]["hvc"] == 1, r
        assert r["traps_per_op"] < io[mode]["traps_per_op"], (r, io[mode])
    assert ki["neve"]["traps_per_op"] < ki["v8.3"]["traps_per_op"]
    # The virtual EOI: virteoi.elf's 22 interrupts, IRQ entry to exception return; the
    # acknowledge and the EOI go to the virtual CPU interface (list registers) and
    # trap nowhere: 0 traps per interrupt in the median, as on hardware with GICv3.
    ve = {r["mode"]: r for r in doc["rows"] if r["benchmark"] == "virtual-eoi-linux"}
    assert set(ve) == {"v8.3", "neve"}
    for r in ve.values():
        assert r["ops"] == 22 and r["deterministic"] and r["traps_per_op"] == 0, r
    # The timer: vtimer.elf's 10 interrupts, each from the physical interrupt (one trap
    # to L0) to the return of the nested VM's handler (its irq_return symbol).
    ti = {r["mode"]: r for r in doc["rows"] if r["benchmark"] == "timer-interrupt-linux"}
    assert set(ti) == {"v8.3", "neve"}
    for r in ti.values():
        assert r["ops"] == 10 and r["deterministic"] and r["by_class"].get("irq") == 1, r
    assert ti["neve"]["traps_per_op"] < ti["v8.3"]["traps_per_op"]


def test_debugger_stops_at_a_trap_in_kvm_el2_code_with_its_symbol():
    """`neve debug --symbols`: a trap breakpoint stops in KVM's nVHE hypervisor, which runs
    the kernel's code at its own EL2 VAs, and names the instruction by the kernel's symbol
    (found while the trapping context's translation is in place)."""
    r = run_neve("debug", "--mode", "v8.3", "--kernel", guest("vmlinuz"), "--initrd", guest("kvm-initrd.gz"),
                 "--append", APPEND, "--symbols", guest("System.map"), "-ex", "break trap ESR_EL2",
                 "-ex", "continue", "-ex", "quit", timeout=600)
    out = r.stdout.decode("utf-8", "replace")
    insn = [ln for ln in out.splitlines() if ln.strip().startswith("insn")]
    assert insn, out[-3000:]
    mo = re.match(r"\s*insn\s+0x([0-9a-f]+) <(__kvm_nvhe_\w+)\+0x[0-9a-f]+>: mrs x\d+, esr_el2", insn[0])
    assert mo, insn[0]
    assert not mo.group(1).startswith("ffff8000"), insn[0]      # a hypervisor VA, not the kernel image's


def test_every_nested_vm_of_the_initramfs_like_qemu():
    """The initramfs's default: each test kernel in turn (gicdread.elf, hypercall.elf,
    mmio.elf, virteoi.elf, vtimer.elf), in nv2, as on QEMU."""
    r = run_neve("run", "--mode", "nv2", "--kernel", guest("vmlinuz"), "--initrd", guest("kvm-initrd.gz"),
                 "--append", APPEND, "--timeout", "900", timeout=1000)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert transcript(r.stdout) == list(qemu_transcript()), r.stdout.decode("utf-8", "replace")[-3000:]


def test_the_one_command(tmp_path):
    """`bash tools/linux_kvm.sh MODE`: guests/ built (or reused), the nested VM's
    transcript, and its traps per hypercall from the run's statistics."""
    import os
    import sys
    from conftest import ROOT
    guest("vmlinuz"), guest("kvm-initrd.gz"), guest("System.map")
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(ROOT))
    p = subprocess.run(["bash", "tools/linux_kvm.sh", "nv2"], cwd=ROOT, capture_output=True, text=True, timeout=900,
                       env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = p.stdout.splitlines()
    assert list(transcript(p.stdout.encode())) == list(qemu_transcript(APPEND + " neve.vm=hypercall.elf")), lines
    row = next(ln.split() for ln in lines if ln.startswith("  nv2 "))
    assert row[1:3] == ["32", str(_traps_per_call("nv2", tmp_path))], lines
    bad = subprocess.run(["bash", "tools/linux_kvm.sh", "vm"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and bad.stderr == "linux_kvm.sh: vm: not a nested mode (v8.3, neve, nv2)\n"


def _traps_per_call(mode: str, tmp_path) -> int:
    stats = tmp_path / f"{mode}.json"
    r = run_neve("run", "--mode", mode, "--kernel", guest("vmlinuz"), "--initrd", guest("kvm-initrd.gz"),
                 "--append", APPEND + " neve.vm=hypercall.elf", "--stats", stats, timeout=900)
    assert r.returncode == 0, r.stderr
    return json.loads(stats.read_text())["hypercalls"]["traps_per_call"]["median"]


def test_gdb_stops_at_a_trap_in_kvm_el2_code_with_its_symbol():
    """`neve gdb --symbols`: gdb-multiarch's `monitor break trap ESR_EL2` stops in KVM's
    nVHE hypervisor; the stop is explained with the kernel's symbol, and gdb's PC is
    the hypervisor's VA after the trapping MRS."""
    import shutil
    from conftest import ROOT, gdb_stub
    gdb_bin = shutil.which("gdb-multiarch")
    if gdb_bin is None:
        pytest.skip("gdb-multiarch not installed")
    with gdb_stub("--mode", "v8.3", "--kernel", guest("vmlinuz"), "--initrd", guest("kvm-initrd.gz"),
                  "--append", APPEND, "--symbols", guest("System.map")) as port:
        gdb = subprocess.run(
            [gdb_bin, "-batch", "-nx", "-ex", "set confirm off", "-ex", "set architecture aarch64",
             "-ex", f"target remote :{port}", "-ex", "monitor break trap ESR_EL2", "-ex", "continue",
             "-ex", "p/x $pc", "-ex", "kill"],
            capture_output=True, text=True, timeout=600, cwd=ROOT)
    out = gdb.stdout + gdb.stderr
    assert gdb.returncode == 0, out
    mo = re.search(r"insn\s+0x([0-9a-f]+) <(__kvm_nvhe_\w+)\+0x[0-9a-f]+>: mrs x\d+, esr_el2", out)
    assert mo, out
    assert f"= 0x{int(mo.group(1), 16) + 4:x}" in out, out      # gdb's PC: after the MRS


def test_timeline_chart_of_a_nested_hypercall_under_linux_kvm():
    """`tools/timeline_png.py --linux guests`: one nested hypercall's path, from the
    nested VM's HVC through KVM's EL2 code, the host kernel and back, each change of
    level named by the symbol it trapped at (nv2 here; the chart draws all three)."""
    import importlib.util
    from pathlib import Path
    from conftest import ROOT
    guest("vmlinuz"), guest("kvm-initrd.gz"), guest("System.map")
    spec = importlib.util.spec_from_file_location("timeline_png", ROOT / "tools" / "timeline_png.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = mod.median_round_trip("nv2", "", str(ROOT / "images" / "hypercall.elf"), mod.L0_WIDTH, 0,
                              linux=Path(guest("vmlinuz")).parent)
    names = [label for _x, label in r["marks"]]
    assert [n.split(" at ")[1].split("+")[0] for n in names] == [
        "hvc_loop", "__kvm_nvhe___host_enter_without_restoring", "kvm_arm_vcpu_enter_exit",
        "__kvm_nvhe___guest_enter"], names
    assert [n.split(" at ")[0] for n in names] == ["HVC #0x0", "ERET", "HVC #0x0", "ERET"], names
    levels = {key for key, _x, _w in r["spans"]}
    assert {"L0", "vEL2", "vEL1-host", "nested-VM"} <= levels, levels
    assert r["traps"] > 0 and r["calls"] == 32, r


@functools.lru_cache(maxsize=None)
def qemu_ipi_smp2() -> tuple[str, ...]:
    from neve.qemu import boot_command
    need_qemu()
    cmd = boot_command(kernel=guest("vmlinuz"), initrd=guest("kvm-initrd.gz"), append=APPEND + " neve.vm=ipi.elf",
                       el2=True, smp=2)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    return tuple(transcript(p.stdout))


@pytest.mark.parametrize("mode", ["v8.3", "neve", "nv2"])
def test_linux_kvm_runs_a_two_vcpu_nested_vm_on_two_cpus(mode):
    """--smp 2: KVM's two vCPU threads of ipi.elf run on the board's two CPUs; the nested
    VM's virtual IPIs go from one vCPU to the other through KVM's vGICv3 (a trap of
    ICC_SGI1R_EL1, list registers, a physical IPI between the CPUs), and the transcript
    equals QEMU's at EL2 with -smp 2."""
    r = run_neve("run", "--mode", mode, "--smp", "2", "--kernel", guest("vmlinuz"), "--initrd",
                 guest("kvm-initrd.gz"), "--append", APPEND + " neve.vm=ipi.elf", "--timeout", "900", timeout=1000)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, (r.stderr.decode()[-2000:], out[-3000:])
    lines = transcript(r.stdout)
    assert "ipi: PASS" in lines and lines[-1] == "init: done", out[-3000:]
    assert tuple(lines) == qemu_ipi_smp2()
