"""Exact, architected trap counts from `neve run --stats`.

The expected numbers are derived by hand from the firmware sources (which
instruction on which path traps under which mode), not copied from a run:

- firmware/nv2probe/nv2probe.S: the hypercall path is HVC -> MRS ESR_EL2 ->
  MRS/MSR SCTLR_EL1 -> MRS/MSR ELR_EL2 -> ERET.  ARMv8.3 NV traps all 7 (ESR/ELR_EL2
  by NV, SCTLR_EL1 by TRVM/TVM, ERET by NV); with FEAT_NV2 ESR/ELR_EL2 are
  redirected to ESR/ELR_EL1 and SCTLR_EL1 lives in the VNCR page, leaving the HVC
  and the ERET (2); NEVE likewise (2).
- firmware/kvmlike with the hypercall kernel: the reference path of
  shared/notes/kvm-v4.10-hypercall-path.md (v8.3 132, NEVE 15, NV2 22).
- firmware/tinyhyp/tinyhyp.S: counted instruction by instruction below.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import IMAGES, assemble, run_neve


def stats(tmp_path: Path, mode: str, *names: str) -> tuple[dict, bytes]:
    out = tmp_path / f"stats-{mode}.json"
    r = run_neve("run", "--mode", mode, "--stats", out, "--max-insns", "100000000",
                 *(IMAGES / f"{n}.elf" for n in names))
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    doc = json.loads(out.read_text())
    t = doc["traps"]
    assert t["total"] == sum(t["by_class"].values()) == sum(t["by_register"].values())
    return doc, r.stdout


def without_uart(d: dict) -> dict:
    return {k: v for k, v in d.items() if not k.startswith("UART.")}


# --- nv2probe ---------------------------------------------------------------------------

NV2PROBE_CALLS = 10
NV2PROBE_V83_CALL = {"HVC #0x10": 1, "ESR_EL2:r": 1, "SCTLR_EL1:r": 1, "SCTLR_EL1:w": 1,
                     "ELR_EL2:r": 1, "ELR_EL2:w": 1, "ERET": 1}
NV2PROBE_NV2_CALL = {"HVC #0x10": 1, "ERET": 1}


@pytest.mark.parametrize("mode, per_call, by_class", [
    ("v8.3", NV2PROBE_V83_CALL, {"hvc": 1, "sysreg": 5, "eret": 1}),
    ("nv2", NV2PROBE_NV2_CALL, {"hvc": 1, "eret": 1}),
    ("neve", NV2PROBE_NV2_CALL, {"hvc": 1, "eret": 1}),
])
def test_nv2probe_per_hypercall(tmp_path, mode, per_call, by_class):
    doc, out = stats(tmp_path, mode, "nv2probe")
    assert b"nv2probe: PASS\n" in out
    hc = doc["hypercalls"]
    n = sum(per_call.values())
    assert hc["count"] == NV2PROBE_CALLS
    assert hc["traps_per_call"] == {"min": n, "median": n, "max": n}
    assert n == {"v8.3": 7, "nv2": 2, "neve": 2}[mode]
    assert hc["median_call"]["by_register"] == per_call
    assert hc["median_call"]["by_class"] == by_class


def test_nv2probe_totals_v83(tmp_path):
    """The whole run in v8.3: boot (VBAR_EL2, SCTLR_EL2, HCR_EL2, SCTLR_EL1, ELR_EL2,
    SPSR_EL2 writes, one ERET), 10 calls, then the done path (ESR_EL2 r, ELR_EL2 r,
    SCTLR_EL1 r, SMC to PSCI)."""
    doc, out = stats(tmp_path, "v8.3", "nv2probe")
    t = doc["traps"]
    expect = {
        "VBAR_EL2:w": 1, "SCTLR_EL2:w": 1, "HCR_EL2:w": 1, "SPSR_EL2:w": 1,
        "SCTLR_EL1:w": 1 + NV2PROBE_CALLS, "SCTLR_EL1:r": NV2PROBE_CALLS + 1,
        "ELR_EL2:w": 1 + NV2PROBE_CALLS, "ELR_EL2:r": NV2PROBE_CALLS + 1,
        "ESR_EL2:r": NV2PROBE_CALLS + 1,
        "ERET": 1 + NV2PROBE_CALLS,
        "HVC #0x10": NV2PROBE_CALLS, "HVC #0xdd": 1,
        "SMC #0x0": 1,
    }
    assert without_uart(t["by_register"]) == expect
    assert t["by_register"]["UART.DR"] == len(out)    # one MMIO store per byte printed


# --- kvmlike + hypercall ------------------------------------------------------------------

@pytest.mark.parametrize("mode, n", [("v8.3", 132), ("nv2", 22), ("neve", 15)])
def test_kvmlike_per_hypercall(tmp_path, mode, n):
    doc, out = stats(tmp_path, mode, "kvmlike", "hypercall")
    hc = doc["hypercalls"]
    assert hc["count"] == 32
    assert hc["traps_per_call"] == {"min": n, "median": n, "max": n}
    mc = hc["median_call"]
    assert sum(mc["by_class"].values()) == n
    assert sum(mc["by_register"].values()) == n
    assert mc["by_class"]["hvc"] == 2 and mc["by_class"]["eret"] == 2   # guest HVC + kvm_call_hyp, two ERETs
    if mode == "v8.3":
        assert mc["by_class"] == {"sysreg": 128, "eret": 2, "hvc": 2}


def test_kvmlike_v83_register_breakdown(tmp_path):
    """Spot checks of the v8.3 per-hypercall breakdown: the 11 EL1 registers saved
    and restored once per direction, and the EL2 registers of the world switch."""
    doc, _ = stats(tmp_path, "v8.3", "kvmlike", "hypercall")
    reg = doc["hypercalls"]["median_call"]["by_register"]
    for name in ("SCTLR_EL1", "TTBR0_EL1", "TTBR1_EL1", "TCR_EL1", "MAIR_EL1", "VBAR_EL1", "CONTEXTIDR_EL1",
                 "ESR_EL1", "FAR_EL1", "AFSR0_EL1", "AFSR1_EL1", "AMAIR_EL1", "ELR_EL1", "SPSR_EL1", "SP_EL1"):
        assert reg.get(f"{name}:r") == 2 and reg.get(f"{name}:w") == 2, (name, reg.get(f"{name}:r"),
                                                                         reg.get(f"{name}:w"))
    assert reg["HCR_EL2:w"] == 4 and reg["VTTBR_EL2:w"] == 2
    assert reg["ERET"] == 2


def test_kvmlike_nv2_no_vncr_register_traps(tmp_path):
    """In nv2 nothing with a VNCR offset traps: no EL1 context register appears in the
    per-hypercall breakdown, and neither does a redirected ELR/SPSR/ESR_EL2."""
    doc, _ = stats(tmp_path, "nv2", "kvmlike", "hypercall")
    reg = doc["hypercalls"]["median_call"]["by_register"]
    for k in reg:
        name = k.split(":")[0]
        assert not name.endswith("_EL1"), k
        assert name not in ("ELR_EL2", "SPSR_EL2", "ESR_EL2", "HCR_EL2", "VTTBR_EL2", "VMPIDR_EL2"), k


# --- tinyhyp --------------------------------------------------------------------------------
# Counted from firmware/tinyhyp/tinyhyp.S.
#   boot:      MSR VBAR_EL2 (S3_4_C12_C0_0), MSR SCTLR_EL2, MSR HCR_EL2 (S3_4_C1_C1_0)
#   step 3:    SVC at EL2 -> current-EL vector: *not* a trap (EL1 -> EL1 on the
#              hardware); el2_sync reads ESR/ELR/SPSR_EL2, then ERET (1)
#   step 4:    MSR ELR_EL2, MSR SPSR_EL2, MSR ELR_EL2 again, ERET from RAM (1)
#   step 5:    MSR SCTLR_EL1 (S3_0_C1_C0_0), MSR ELR_EL2, MSR SPSR_EL2, ERET (1)
#   guest:     HVC #0x11, HVC #0x22, SMC #0x33 (TSC), HVC #0 (SYSTEM_OFF): 4 exits,
#              each reading ESR_EL2 and ELR_EL2; 3 of them ERET back (3)
#   hvc #0x22: MRS SCTLR_EL1, MSR SCTLR_EL1, MRS SCTLR_EL1
#   smc #0x33: MSR ELR_EL2 (step over the SMC)
#   power off: SMC #0 at vEL2 (PSCI)
TINYHYP_SYSREGS_V83 = {
    "VBAR_EL2:w": 1, "SCTLR_EL2:w": 1, "HCR_EL2:w": 1,
    "ESR_EL2:r": 1 + 4, "ELR_EL2:r": 1 + 4, "SPSR_EL2:r": 1,
    "ELR_EL2:w": 2 + 1 + 1, "SPSR_EL2:w": 1 + 1,
    "SCTLR_EL1:w": 1 + 1, "SCTLR_EL1:r": 2,
}
TINYHYP_OTHER = {"ERET": 6, "HVC #0x11": 1, "HVC #0x22": 1, "HVC #0x0": 1, "SMC #0x33": 1, "SMC #0x0": 1}


@pytest.mark.parametrize("mode, sysregs", [
    ("v8.3", TINYHYP_SYSREGS_V83),
    # NV2 (non-VHE, NV1=1): HCR_EL2 and SCTLR_EL1 are in the VNCR page, ESR/ELR/SPSR_EL2
    # go to their EL1 twins; VBAR_EL2 and SCTLR_EL2 (EL2 regime) still trap.
    ("nv2", {"VBAR_EL2:w": 1, "SCTLR_EL2:w": 1}),
    # NEVE: EL2 regime registers are redirected, VM registers logged: nothing traps.
    ("neve", {}),
])
def test_tinyhyp_counts(tmp_path, mode, sysregs):
    doc, out = stats(tmp_path, mode, "tinyhyp")
    assert b"tinyhyp: guest asked for SYSTEM_OFF after 3 hvc and 1 smc\n" in out
    t = doc["traps"]
    assert without_uart(t["by_register"]) == sysregs | TINYHYP_OTHER
    assert t["by_class"]["eret"] == 6
    assert t["by_class"]["hvc"] == 3
    assert t["by_class"]["smc"] == 2
    assert t["by_class"].get("sysreg", 0) == sum(sysregs.values())
    assert "svc" not in t["by_class"] and not any(k.startswith("SVC") for k in t["by_register"])
    assert t["by_register"]["UART.DR"] == len(out)
    # Two hypercalls return (0x11, 0x22); the SYSTEM_OFF one never does.
    hc = doc["hypercalls"]
    assert hc["count"] == 2
    # Non-MMIO traps of the two calls: hvc #0x11 = HVC + ESR r + ELR r + ERET;
    # hvc #0x22 adds SCTLR_EL1 r, w, r.  In nv2/neve only HVC and ERET are left.
    uart_min = hc["traps_per_call"]["min"] - (4 if mode == "v8.3" else 2)
    uart_max = hc["traps_per_call"]["max"] - (7 if mode == "v8.3" else 2)
    assert uart_min == len(b"tinyhyp: hvc: ESR_EL2=0x000000005a000011 ELR_EL2=0x0000000040001a1c\n")
    assert uart_max == uart_min + len(b"tinyhyp: SCTLR_EL1 0x0000000030d00800 -> 0x0000000034d00800\n")


# --- vm mode ----------------------------------------------------------------------------------

def test_vm_hypercall_one_trap_each(tmp_path):
    doc, out = stats(tmp_path, "vm", "hypercall")
    hc = doc["hypercalls"]
    assert hc["count"] == 32
    assert hc["traps_per_call"] == {"min": 1, "median": 1, "max": 1}
    assert hc["median_call"]["by_register"] == {"HVC #0x0": 1}
    assert without_uart(doc["traps"]["by_register"]) == {"HVC #0x0": 33}


def test_vm_plainkernel_honest_counts(tmp_path):
    """plainkernel's SVCs, BRK and its own exception vectors never reach L0; its UART
    (polling FR before each byte or not) and PSCI calls do."""
    doc, out = stats(tmp_path, "vm", "plainkernel")
    t = doc["traps"]
    assert set(t["by_class"]) <= {"mmio", "hvc"}
    assert t["by_register"]["UART.DR"] == len(out)
    assert t["by_class"]["hvc"] == 2        # PSCI VERSION, SYSTEM_OFF


# --- a minimal guest hypervisor (issue 16, defect 9) -------------------------------------------

MINIHYP = r"""
    .globl _start
_start:                              // at (virtual) EL2
    adr     x0, vectors
    msr     vbar_el2, x0
    mov     x0, #(1 << 31)           // HCR_EL2 = RW only: no stage 2, no VMID
    msr     hcr_el2, x0
    msr     vttbr_el2, xzr
    adr     x0, guest
    msr     elr_el2, x0
    mov     x0, #0x3c5               // EL1h, DAIF masked
    msr     spsr_el2, x0
    isb
    eret
guest:                               // at EL1: three hypercalls, then SYSTEM_OFF
    mov     x19, #3
1:  hvc     #0x42
    sub     x19, x19, #1
    cbnz    x19, 1b
    ldr     x0, =0x84000008
    hvc     #0
    b       .

    .balign 0x800
vectors:
    .skip   0x400
    mrs     x1, esr_el2              // lower EL, AArch64, synchronous
    and     x1, x1, #0xffff
    cmp     x1, #0x42
    b.ne    2f
    eret                             // a hypercall served
2:  smc     #0                       // x0 = SYSTEM_OFF: to the firmware
    b       .
"""


@pytest.mark.toolchain
@pytest.mark.parametrize("mode", ["v8.3", "neve", "nv2"])
def test_minimal_guest_hypervisor_hypercalls_counted(tmp_path, mode):
    """A guest hypervisor that never gives its EL1 guest a VM context (HCR_EL2 = RW,
    VTTBR_EL2 = 0) still has hypercalls: those of that EL1 guest, from each HVC to
    the ERET back (HVC + ESR_EL2 read + ERET; v8.3 traps all three)."""
    img = assemble(tmp_path, "minihyp", MINIHYP, 0x40080000)
    out = tmp_path / "stats.json"
    r = run_neve("run", "--mode", mode, "--stats", out, img)
    assert r.returncode == 0, r.stderr
    hc = json.loads(out.read_text())["hypercalls"]
    assert hc["count"] == 3
    assert hc["guest"] == "vEL1-host"       # the context L1 runs without a VM (events.py)
    per = 3 if mode == "v8.3" else 2            # nv2/neve: ESR_EL2 read redirected to ESR_EL1
    assert hc["traps_per_call"] == {"min": per, "median": per, "max": per}
