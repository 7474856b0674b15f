"""The system-register table: one row per register, the single source of truth.

Every register neve knows is one `SysReg` row: its name and MRS/MSR encoding, reset
value, access (rw/ro/wo), which group it belongs to, the architected trap conditions
that send an access made *at EL1* to EL2, its FEAT_NV2 VNCR page offset, and how the
NEVE design classifies it.  Decode, trap routing for every mode, the VNCR page layout,
the debugger's register view and the GDB target description all read this table; a
mode is a policy over it (`l0_controls`, `vel2_access`, and neve/el2/policy.py for user
policies), not a list of call sites.

Trap conditions are rows of ``Trap(ctrl, bit, rw)``: "an access of kind `rw` traps to
EL2 when bit `bit` of control register `ctrl` is set" (or, with ``when_clear=True``, when
it is clear, as for CNTHCTL_EL2.EL1PCTEN and ICC_SRE_EL2.Enable), exactly as the Arm ARM states
them for HCR_EL2.{NV,NV1,TVM,TRVM,TACR,TID*}, CPTR_EL2.TCPAC, MDCR_EL2.{TDA,TPM},
CNTHCTL_EL2 and ICH_HCR_EL2.  `trap_reasons` evaluates them against the control values
in force; the same evaluation serves L0's own traps (which decide what counts as a
trap) and L1's virtual ones (which decide what is forwarded to virtual EL2).

`l0_controls(mode)` gives the controls L0 programs while L1's virtual EL2 runs, and
`vel2_access(reg, write, mode)` what an access from virtual EL2 does in each mode
("v8.3", "neve", "nv2"), both computed from the rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from neve.arch.modes import NESTED_MODES, Access, Mode
from neve.gic.regs import ICH_VMCR_RESET, ICH_VTR_VALUE

# --- control-register bit positions (Arm ARM names) --------------------------------
CTRL_BITS: dict[str, dict[str, int]] = {
    "HCR_EL2": {
        "VM": 0, "SWIO": 1, "PTW": 2, "FMO": 3, "IMO": 4, "AMO": 5, "VF": 6, "VI": 7,
        "VSE": 8, "FB": 9, "DC": 12, "TWI": 13, "TWE": 14, "TID0": 15, "TID1": 16,
        "TID2": 17, "TID3": 18, "TSC": 19, "TIDCP": 20, "TACR": 21, "TSW": 22,
        "TPCP": 23, "TPU": 24, "TTLB": 25, "TVM": 26, "TGE": 27, "TDZ": 28, "HCD": 29,
        "TRVM": 30, "RW": 31, "CD": 32, "ID": 33, "E2H": 34, "TLOR": 35, "TERR": 36,
        "TEA": 37, "APK": 40, "API": 41, "NV": 42, "NV1": 43, "AT": 44, "NV2": 45,
        "FWB": 46,
    },
    # Non-VHE layout of CPTR_EL2.
    "CPTR_EL2": {"TZ": 8, "TFP": 10, "TTA": 20, "TAM": 30, "TCPAC": 31},
    "MDCR_EL2": {"TPMCR": 5, "TPM": 6, "HPME": 7, "TDE": 8, "TDA": 9, "TDOSA": 10, "TDRA": 11},
    "CNTHCTL_EL2": {"EL1PCTEN": 0, "EL1PCEN": 1, "EVNTEN": 2},
    "ICH_HCR_EL2": {"En": 0, "TC": 10, "TALL0": 11, "TALL1": 12, "TDIR": 14},
    "ICC_SRE_EL2": {"SRE": 0, "DFB": 1, "DIB": 2, "Enable": 3},
    # EL1 controls of EL0 accesses (the `el0` column).
    "CNTKCTL_EL1": {"EL0PCTEN": 0, "EL0VCTEN": 1, "EVNTEN": 2, "EL0VTEN": 8, "EL0PTEN": 9},
    "MDSCR_EL1": {"TDCC": 12},
    "PMUSERENR_EL0": {"EN": 0, "SW": 1, "CR": 2, "ER": 3},
    "SCTLR_EL1": {"UMA": 9, "DZE": 14, "UCT": 15, "nTWI": 16, "nTWE": 18, "UCI": 26},
}


def ctrl_bit(ctrl: str, bit: str) -> int:
    """The mask of `bit` in control register `ctrl` ("A|B": either); KeyError names both
    if unknown."""
    try:
        return sum(1 << CTRL_BITS[ctrl][b] for b in bit.split("|"))
    except KeyError:
        raise KeyError(f"unknown control bit {ctrl}.{bit}") from None


# Control bits that make others behave as 1 (Arm ARM): MDCR_EL2.TDE -> TDA, TDOSA, TDRA.
_IMPLIED = {("MDCR_EL2", "TDE"): ("TDA", "TDOSA", "TDRA")}


def effective_controls(ctrl: dict[str, int]) -> dict[str, int]:
    """The control values as the trap conditions see them: a bit that forces others
    to behave as 1 sets them."""
    out = dict(ctrl)
    for (reg, bit), implied in _IMPLIED.items():
        if out.get(reg, 0) & ctrl_bit(reg, bit):
            for b in implied:
                out[reg] |= ctrl_bit(reg, b)
    return out


@dataclass(frozen=True)
class Trap:
    """An access of kind `rw` ('r', 'w' or 'rw') made at EL1 traps to EL2 when
    `ctrl`.`bit` is set, or, with `when_clear`, when it is clear (the Arm ARM states
    some enables that way, e.g. CNTHCTL_EL2.EL1PCTEN == 0 traps CNTPCT_EL0)."""

    ctrl: str
    bit: str
    rw: str = "rw"
    when_clear: bool = False

    def applies(self, write: bool) -> bool:
        return ("w" if write else "r") in self.rw

    def holds(self, ctrl: dict[str, int]) -> bool:
        """True when the control values in `ctrl` (name -> value) satisfy the condition."""
        is_set = bool(ctrl.get(self.ctrl, 0) & ctrl_bit(self.ctrl, self.bit))
        return is_set != self.when_clear

    def __str__(self) -> str:
        return f"{self.ctrl}.{self.bit}" + ("==0" if self.when_clear else "")


GROUPS = ("el0", "el1", "el2", "el12", "timer", "gic", "pmu", "debug", "id", "impdef", "special")

# The components a row's `fn` names: they compute the register's value when it is read
# and act when it is written, instead of plain storage.
FNS = {
    "gic": "the GICv3 CPU interface, L0's shadow list registers, or an ICH_* register "
           "computed from L1's list registers (neve/gic/delivery.py)",
    "timer": "a generic timer of the CPU's timer bank (neve/devices/timer.py)",
    "pmu": "the PMU (neve/devices/pmu.py)",
    "debug": "the breakpoint and watchpoint registers, which arm breakpoints (neve/devices/debug.py)",
    "pmuctl": "plain storage whose write changes which PMU counters count (MDCR_EL2.HPMN/HPME/HPMD): the "
              "PMU counts up to the write first (neve/devices/pmu.py)",
}

# Behaviour of an access from (virtual) EL2 when FEAT_NV2 is on (HCR_EL2.{NV,NV1,NV2}=1).
NV2_MEM = "mem"            # load/store at VNCR_EL2.BADDR + vncr
NV2_REDIRECT = "redirect"  # executes as an access to the EL1 register named by `redirect`
NV2_TRAP = "trap"          # still traps as under FEAT_NV
NV2_NATIVE = "native"      # not trapped (an ordinary EL1 register access)

# NEVE classification (the paper, section 4).
NEVE_VM = "vm"             # VM register: the access is logged to the NEVE page, no trap
NEVE_HYP = "hyp"           # hypervisor control register: redirected to an EL1 register, no trap
NEVE_TRAP = "trap"         # effect is immediate or cannot be deferred: still traps
NEVE_NATIVE = "native"     # not intercepted by NEVE: traps only if L0's own controls say so


ALL64 = 0xFFFF_FFFF_FFFF_FFFF
# SCTLR_ELx without FEAT_MTE: TCF0, TCF, ATA0, ATA, ITFSB (bits [43:37]) are RES0.
SCTLR_WMASK = ALL64 & ~(0x7F << 37)
RAZ_WI = 0
VBAR_WMASK = ALL64 & ~0x1F
# ICC_SRE_EL2 of L1's hyp interface: SRE, DFB, DIB and Enable are RAO/WI (as QEMU: the
# system-register interface is always enabled), so L1 never traps its guests' ICC_SRE_EL1.
ICC_SRE_EL2_RAO = 0xF


@dataclass(frozen=True)
class SysReg:
    name: str
    op0: int
    op1: int
    crn: int
    crm: int
    op2: int
    group: str                     # el0 el1 el2 el12 timer gic pmu debug id special
    reset: int = 0                 # architectural/model reset value (0 where UNKNOWN)
    access: str = "rw"             # rw | ro | wo
    traps: tuple[Trap, ...] = ()   # conditions under which an access *at EL1* traps to EL2
    vncr: int | None = None        # FEAT_NV2 VNCR page offset (bytes)
    nv2: str = NV2_NATIVE          # behaviour at vEL2 with NV2 (NV1=1)
    redirect: str | None = None    # EL1 twin for NV2_REDIRECT / NEVE_HYP
    neve: str = NEVE_NATIVE        # NEVE classification
    shadow: str | None = None      # EL2 register -> EL1 register that carries it while vEL2 runs
    alias: str | None = None       # _EL12/_EL02 encoding -> the register it accesses
    doc: str = ""                  # one line: what it is / why classified so
    wmask: int = ALL64             # bits a write changes (QEMU 10's cortex-a72): RAZ/WI is 0
    feature: str | None = None     # the architecture feature the register needs ("vhe", "nv2")
    el0: tuple[Trap, ...] = ()     # conditions under which an access *at EL0* traps to EL1
    # Behaviour beyond storage (QEMU's readfn/writefn, by name):
    fn: str | None = None          # the L0 component that computes reads / acts on writes (FNS)
    regime: bool = False           # a write changes the translation regime / FP enable of the
                                   # EL it governs: L0 refreshes what it derives from it
    immediate: str = ""            # why a write must take effect at once (a policy cannot log it)

    @property
    def key(self) -> tuple[int, int, int, int, int]:
        return (self.op0, self.op1, self.crn, self.crm, self.op2)

    @property
    def encoding(self) -> str:
        return f"S{self.op0}_{self.op1}_C{self.crn}_C{self.crm}_{self.op2}"

    def trap_reasons(self, write: bool, ctrl: dict[str, int]) -> list[Trap]:
        """The trap conditions satisfied by `ctrl` (control register name -> value)."""
        return [t for t in self.traps if t.applies(write) and t.holds(ctrl)]

    @property
    def el0_accessible(self) -> bool:
        """Can EL0 access it at all (subject to `el0`)?  Otherwise UNDEFINED at EL0."""
        return self.name.endswith("_EL0") or self.name in ("NZCV", "DAIF", "FPCR", "FPSR")


def enc_name(op0: int, op1: int, crn: int, crm: int, op2: int) -> str:
    return f"S{op0}_{op1}_C{crn}_C{crm}_{op2}"


# Shorthands used by the rows.
_NV = (Trap("HCR_EL2", "NV"),)
_NV1 = (Trap("HCR_EL2", "NV1"),)
_TVM = (Trap("HCR_EL2", "TVM", "w"), Trap("HCR_EL2", "TRVM", "r"))
_TACR = (Trap("HCR_EL2", "TACR"),)
_TCPAC = (Trap("CPTR_EL2", "TCPAC"),)
_TID1 = (Trap("HCR_EL2", "TID1", "r"),)
_TID2 = (Trap("HCR_EL2", "TID2", "r"),)
_TID3 = (Trap("HCR_EL2", "TID3", "r"),)
_TDA = (Trap("MDCR_EL2", "TDA"),)
_TDOSA = (Trap("MDCR_EL2", "TDOSA"),)
_TPM = (Trap("MDCR_EL2", "TPM"),)
_EN = (Trap("PMUSERENR_EL0", "EN", when_clear=True),)
_EVCNTR = (Trap("PMUSERENR_EL0", "EN|ER", "r", when_clear=True), Trap("PMUSERENR_EL0", "EN", "w", when_clear=True))
_EL1PCTEN = (Trap("CNTHCTL_EL2", "EL1PCTEN", "r", when_clear=True),)
# EL0 accesses to the generic timer, by CNTKCTL_EL1 (to EL1).
_EL0PCTEN = (Trap("CNTKCTL_EL1", "EL0PCTEN", when_clear=True),)
_EL0VCTEN = (Trap("CNTKCTL_EL1", "EL0VCTEN", when_clear=True),)
_EL0PTEN = (Trap("CNTKCTL_EL1", "EL0PTEN", when_clear=True),)
_EL0VTEN = (Trap("CNTKCTL_EL1", "EL0VTEN", when_clear=True),)
_EL1PCEN = (Trap("CNTHCTL_EL2", "EL1PCEN", when_clear=True),)
# GICv3 virtual-interface traps (ICH_HCR_EL2): they apply to EL1 accesses that go to the
# virtual CPU interface, i.e. with HCR_EL2.IMO/FMO set for the group concerned.
_TC = (Trap("ICH_HCR_EL2", "TC"),)
_TALL0 = (Trap("ICH_HCR_EL2", "TALL0"),)
_TALL1 = (Trap("ICH_HCR_EL2", "TALL1"),)
_SGI = (Trap("HCR_EL2", "IMO", "w"), Trap("HCR_EL2", "FMO", "w"))

SCTLR_EL2_RES1 = 0x30C50830
# SCTLR_EL1 as QEMU 10.0 `-cpu max` reports it at reset (gdb $SCTLR on `-M virt -cpu max`).
SCTLR_EL1_RESET_QEMU_MAX = 0x00C50838


def _r(*a, **k) -> SysReg:
    return SysReg(*a, **k)


def _el1(name, op1, crn, crm, op2, traps, vncr, doc, *, reset=0, group="el1", wmask=ALL64, **more):
    """An EL1 register that a hypervisor context-switches: NV2-backed and a NEVE VM register."""
    return SysReg(name, 3, op1, crn, crm, op2, group, reset=reset, traps=traps, vncr=vncr,
                  nv2=NV2_MEM, neve=NEVE_VM, doc=doc, wmask=wmask, **more)


def _el2_hyp(name, crn, crm, op2, twin, doc, *, nv2=NV2_TRAP, reset=0, wmask=ALL64, feature=None, **more):
    """An EL2 register that controls virtual EL2's own execution: carried by its EL1 twin
    while vEL2 runs (shadow) and redirected there by NEVE."""
    return SysReg(name, 3, 4, crn, crm, op2, "el2", reset=reset, traps=_NV, nv2=nv2,
                  redirect=twin, neve=NEVE_HYP, shadow=twin, doc=doc, wmask=wmask, feature=feature, **more)


def _el2_vm(name, crn, crm, op2, vncr, doc, *, reset=0, wmask=ALL64, feature=None, **more):
    """An EL2 register that only configures the nested VM: VNCR-backed, NEVE VM register."""
    return SysReg(name, 3, 4, crn, crm, op2, "el2", reset=reset, traps=_NV, vncr=vncr, nv2=NV2_MEM,
                  neve=NEVE_VM, doc=doc, wmask=wmask, feature=feature, **more)


# Registers whose _EL1/_EL0 encoding has a VNCR slot (the _EL12/_EL02 alias is the VM's
# register for a VHE guest hypervisor, so NEVE logs it to the same slot).
_VNCR_TARGETS = {
    "SCTLR_EL1", "CPACR_EL1", "TTBR0_EL1", "TTBR1_EL1", "TCR_EL1", "AFSR0_EL1",
    "AFSR1_EL1", "ESR_EL1", "FAR_EL1", "MAIR_EL1", "AMAIR_EL1", "VBAR_EL1",
    "CONTEXTIDR_EL1", "ELR_EL1", "SPSR_EL1", "CNTP_CTL_EL0", "CNTP_CVAL_EL0",
    "CNTV_CTL_EL0", "CNTV_CVAL_EL0",
}


def _el12(name, op2_enc, target, doc):
    """An _EL12/_EL02 alias (op1 = 5).  Traps with HCR_EL2.NV (UNDEF without it); with
    NV2 and NV1=1 it still traps (memory redirection is for the _EL1/_EL0 encoding)."""
    crn, crm, op2 = op2_enc
    return SysReg(name, 3, 5, crn, crm, op2, "el12", traps=_NV, nv2=NV2_TRAP, alias=target,
                  neve=NEVE_VM if target in _VNCR_TARGETS else NEVE_TRAP, doc=doc)


# --- the table -------------------------------------------------------------------
# Rows are grouped by feature.  check_table() verifies: names unique, encodings unique,
# VNCR offsets unique and 8-byte aligned inside the page, every redirect/shadow/alias
# names a row, every Trap names a known control bit, NV2_MEM rows have a vncr offset,
# NEVE VM rows have a page slot, every *_EL2 and alias row traps with HCR_EL2.NV.
REGISTERS: tuple[SysReg, ...] = (
    # ---- EL1 registers a hypervisor saves and restores ----------------------------
    _el1("SCTLR_EL1", 0, 1, 0, 0, _TVM, 0x110, "System control, EL1&0 regime (TVM/TRVM)",
         reset=SCTLR_EL1_RESET_QEMU_MAX, wmask=SCTLR_WMASK, regime=True),
    _el1("ACTLR_EL1", 0, 1, 0, 1, _TACR, 0x118, "Auxiliary control, IMPLEMENTATION DEFINED (TACR); RAZ/WI",
         wmask=RAZ_WI),
    _el1("CPACR_EL1", 0, 1, 0, 2, _TCPAC, 0x100, "FP/SIMD/SVE access control for EL1/EL0 (CPTR_EL2.TCPAC)",
         regime=True),
    _el1("TTBR0_EL1", 0, 2, 0, 0, _TVM, 0x200, "Stage-1 translation table base 0 (TVM/TRVM)", regime=True),
    _el1("TTBR1_EL1", 0, 2, 0, 1, _TVM, 0x210, "Stage-1 translation table base 1 (TVM/TRVM)", regime=True),
    _el1("TCR_EL1", 0, 2, 0, 2, _TVM, 0x120, "Translation control, EL1&0 regime (TVM/TRVM)"),
    _el1("SPSR_EL1", 0, 4, 0, 0, _NV1, 0x160, "Saved PSTATE on exception to EL1 (traps with NV1)"),
    _el1("ELR_EL1", 0, 4, 0, 1, _NV1, 0x230, "Exception link register, EL1 (traps with NV1)"),
    _el1("AFSR0_EL1", 0, 5, 1, 0, _TVM, 0x128, "Auxiliary fault status 0 (TVM/TRVM); RAZ/WI", wmask=RAZ_WI),
    _el1("AFSR1_EL1", 0, 5, 1, 1, _TVM, 0x130, "Auxiliary fault status 1 (TVM/TRVM); RAZ/WI", wmask=RAZ_WI),
    _el1("ESR_EL1", 0, 5, 2, 0, _TVM, 0x138, "Exception syndrome, EL1 (TVM/TRVM)"),
    _el1("FAR_EL1", 0, 6, 0, 0, _TVM, 0x220, "Fault address, EL1 (TVM/TRVM)"),
    _el1("MAIR_EL1", 0, 10, 2, 0, _TVM, 0x140, "Memory attribute indirection (TVM/TRVM)"),
    _el1("AMAIR_EL1", 0, 10, 3, 0, _TVM, 0x148, "Auxiliary memory attribute indirection (TVM/TRVM); RAZ/WI",
         wmask=RAZ_WI),
    _el1("VBAR_EL1", 0, 12, 0, 0, _NV1, 0x250, "Vector base, EL1 (traps with NV1)", wmask=VBAR_WMASK),
    _el1("CONTEXTIDR_EL1", 0, 13, 0, 1, _TVM, 0x108, "Context ID, EL1 (TVM/TRVM)"),
    _r("SP_EL1", 3, 4, 4, 1, 0, "el1", traps=_NV, vncr=0x240, nv2=NV2_MEM, neve=NEVE_VM,
       doc="EL1 stack pointer; op1=4 encoding, traps with NV"),
    _r("TPIDR_EL1", 3, 0, 13, 0, 4, "el1", doc="EL1 software thread ID; never trapped"),
    _r("CNTKCTL_EL1", 3, 0, 14, 1, 0, "el1", doc="EL0 counter/timer access control; never trapped (non-VHE)"),
    _r("PAR_EL1", 3, 0, 7, 4, 0, "el1", doc="Physical address from AT; never trapped"),
    _r("CSSELR_EL1", 3, 2, 0, 0, 0, "el1", traps=(Trap("HCR_EL2", "TID2"),),
       doc="Cache size selection (TID2, reads and writes)"),
    _r("TPIDR_EL0", 3, 3, 13, 0, 2, "el0", doc="EL0 software thread ID; never trapped"),
    _r("TPIDRRO_EL0", 3, 3, 13, 0, 3, "el0", doc="EL0 read-only thread ID (RW at EL1); never trapped"),
    _r("SP_EL0", 3, 0, 4, 1, 0, "el0", doc="EL0 stack pointer (MSR/MRS at EL1 with SPSel=1); never trapped"),
    # ---- special-purpose registers: native in every mode ---------------------------
    _r("CurrentEL", 3, 0, 4, 2, 2, "special", access="ro",
       doc="Current EL in bits[3:2]; reads EL2 at EL1 when HCR_EL2.NV=1 (never traps)"),
    _r("SPSel", 3, 0, 4, 2, 0, "special", reset=1, doc="Stack pointer select; resets to SP_ELx"),
    _r("DAIF", 3, 3, 4, 2, 1, "special", reset=0x3C0, el0=(Trap("SCTLR_EL1", "UMA", when_clear=True),),
       doc="Interrupt masks; all masked at reset; EL0 accesses trap to EL1 unless SCTLR_EL1.UMA"),
    _r("NZCV", 3, 3, 4, 2, 0, "special", doc="Condition flags"),
    _r("FPCR", 3, 3, 4, 4, 0, "special",
       doc="FP control; only FP-access traps (CPACR.FPEN/CPTR.TFP, EC 0x07) apply, modelled with FP instructions"),
    _r("FPSR", 3, 3, 4, 4, 1, "special",
       doc="FP status; only FP-access traps (CPACR.FPEN/CPTR.TFP, EC 0x07) apply, modelled with FP instructions"),

    # ---- EL2 registers (ARMv8.3; every access at EL1 traps with HCR_EL2.NV) --------
    _el2_vm("VPIDR_EL2", 0, 0, 0, 0x088, "Value MIDR_EL1 reads at EL1; reset filled from MIDR by the emulator"),
    _el2_vm("VMPIDR_EL2", 0, 0, 5, 0x050, "Value MPIDR_EL1 reads at EL1; reset filled from MPIDR by the emulator"),
    _el2_hyp("SCTLR_EL2", 1, 0, 0, "SCTLR_EL1", "EL2 system control; vEL2 runs with it adapted into SCTLR_EL1",
             wmask=SCTLR_WMASK, regime=True, immediate="it controls vEL2's own translation regime and caches"),
    _el2_hyp("ACTLR_EL2", 1, 0, 1, "ACTLR_EL1", "EL2 auxiliary control (IMPLEMENTATION DEFINED); RAZ/WI",
             wmask=RAZ_WI),
    _el2_vm("HCR_EL2", 1, 1, 0, 0x078, "Hypervisor configuration: only shapes the VM's execution, applied at ERET; "
            "ARMv8.0 has bits [33:0]", wmask=(1 << 34) - 1),
    _r("MDCR_EL2", 3, 4, 1, 1, 1, "el2", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP, reset=6, fn="pmuctl",
       doc="NEVE trap: HPMN/HPME/HPMD change PMU counting while vEL2 itself runs, so writes take effect immediately",
       immediate="HPMN/HPME change PMU counting while vEL2 runs"),
    _r("CPTR_EL2", 3, 4, 1, 1, 2, "el2", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP,
       doc="NEVE trap: non-VHE TFP/TZ/TTA also trap EL2's own FP/SVE/trace at once; CPACR_EL1 layout differs, no redirect",
       regime=True, immediate="TFP/TZ/TTA trap vEL2's own FP/SVE/trace accesses at once"),
    _el2_vm("HSTR_EL2", 1, 1, 3, 0x080, "Traps EL1/EL0 AArch32 CP15 accesses: VM configuration"),
    _r("HACR_EL2", 3, 4, 1, 1, 7, "el2", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP, wmask=RAZ_WI,
       doc="IMPLEMENTATION DEFINED trap controls: effect unknown and no VNCR slot, so it traps; RAZ/WI"),
    _el2_hyp("TTBR0_EL2", 2, 0, 0, "TTBR0_EL1", "EL2 stage-1 table base: vEL2's own translation",
             regime=True, immediate="it holds vEL2's own page tables"),
    _el2_hyp("TTBR1_EL2", 2, 0, 1, "TTBR1_EL1", "EL2 stage-1 table base 1 (VHE, E2H=1): vEL2's own translation",
             feature="vhe"),
    _el2_hyp("TCR_EL2", 2, 0, 2, "TCR_EL1", "EL2 translation control (layout adapted to TCR_EL1): vEL2's own translation",
             regime=True, immediate="it controls vEL2's own translation regime"),
    _el2_vm("VTTBR_EL2", 2, 1, 0, 0x020, "Stage-2 table base and VMID of the nested VM"),
    _el2_vm("VTCR_EL2", 2, 1, 2, 0x040, "Stage-2 translation control of the nested VM"),
    _el2_vm("VNCR_EL2", 2, 2, 0, 0x0B0, "FEAT_NV2 page base (BADDR); a VM-side value for a nested NV2 guest",
            feature="nv2", immediate="it locates the page itself"),
    _el2_hyp("SPSR_EL2", 4, 0, 0, "SPSR_EL1", "Saved PSTATE on exception to EL2", nv2=NV2_REDIRECT),
    _el2_hyp("ELR_EL2", 4, 0, 1, "ELR_EL1", "Exception link register, EL2", nv2=NV2_REDIRECT),
    _el2_hyp("AFSR0_EL2", 5, 1, 0, "AFSR0_EL1", "Auxiliary fault status 0, EL2; RAZ/WI", wmask=RAZ_WI),
    _el2_hyp("AFSR1_EL2", 5, 1, 1, "AFSR1_EL1", "Auxiliary fault status 1, EL2; RAZ/WI", wmask=RAZ_WI),
    _el2_hyp("ESR_EL2", 5, 2, 0, "ESR_EL1", "Exception syndrome, EL2", nv2=NV2_REDIRECT),
    _el2_hyp("FAR_EL2", 6, 0, 0, "FAR_EL1", "Fault address, EL2", nv2=NV2_REDIRECT),
    _r("HPFAR_EL2", 3, 4, 6, 0, 4, "el2", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP,
       doc="Faulting IPA of a stage-2 abort: no EL1 twin and no VNCR slot, so it traps (only read on stage-2 exits)"),
    _el2_hyp("MAIR_EL2", 10, 2, 0, "MAIR_EL1", "EL2 memory attributes: vEL2's own translation",
             regime=True, immediate="it gives the memory attributes of vEL2's own accesses"),
    _el2_hyp("AMAIR_EL2", 10, 3, 0, "AMAIR_EL1", "EL2 auxiliary memory attributes; RAZ/WI", wmask=RAZ_WI),
    _el2_hyp("VBAR_EL2", 12, 0, 0, "VBAR_EL1", "EL2 vector base: where vEL2 takes its exceptions",
             wmask=VBAR_WMASK, immediate="exceptions vEL2 takes itself (SVC, BRK, aborts) use it without L0"),
    _el2_hyp("CONTEXTIDR_EL2", 13, 0, 1, "CONTEXTIDR_EL1", "EL2 context ID (VHE)", feature="vhe"),
    _el2_vm("TPIDR_EL2", 13, 0, 2, 0x090,
            "EL2 software thread ID: no architectural effect, a page slot suffices (TPIDR_EL1 is in native use)"),
    _el2_vm("CNTVOFF_EL2", 14, 0, 3, 0x060, "Virtual counter offset of the nested VM", fn="timer"),
    _r("CNTHCTL_EL2", 3, 4, 14, 1, 0, "el2", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP, wmask=0xFFF, reset=0x3,
       doc="NEVE trap: EVNTEN/EVNTI drive the event stream vEL2 itself sees; its EL1 analogue CNTKCTL_EL1 is in native use",
       immediate="EVNTEN/EVNTI drive the event stream vEL2 itself sees"),
    _r("CNTHP_TVAL_EL2", 3, 4, 14, 2, 0, "el2", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP,
       doc="EL2 physical timer value: arms vEL2's own timer immediately",
       fn="timer", immediate="its value is derived from the counter at the time of the access"),
    _r("CNTHP_CTL_EL2", 3, 4, 14, 2, 1, "el2", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP,
       doc="EL2 physical timer control: vEL2's own timer, immediate effect",
       fn="timer", immediate="vEL2's own hyp timer fires on it"),
    _r("CNTHP_CVAL_EL2", 3, 4, 14, 2, 2, "el2", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP,
       doc="EL2 physical timer compare value: vEL2's own timer, immediate effect",
       fn="timer", immediate="vEL2's own hyp timer fires on it"),
    _r("CNTHV_TVAL_EL2", 3, 4, 14, 3, 0, "el2", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP, feature="vhe",
       doc="EL2 virtual timer value (VHE): vEL2's own timer, immediate effect",
       immediate="its value is derived from the counter at the time of the access"),
    _r("CNTHV_CTL_EL2", 3, 4, 14, 3, 1, "el2", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP, feature="vhe",
       doc="EL2 virtual timer control (VHE): vEL2's own timer, immediate effect",
       immediate="vEL2's own timer fires on it"),
    _r("CNTHV_CVAL_EL2", 3, 4, 14, 3, 2, "el2", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP, feature="vhe",
       doc="EL2 virtual timer compare value (VHE): vEL2's own timer, immediate effect",
       immediate="vEL2's own timer fires on it"),
    # GICv3 hypervisor interface.
    _el2_hyp("ICC_SRE_EL2", 12, 9, 5, "ICC_SRE_EL1",
             "NEVE hyp: SRE/DFB/DIB share ICC_SRE_EL1's layout and govern vEL2's own GIC access; "
             "Enable (gates the VM's ICC_SRE_EL1) is read by L0 at ERET; RAO/WI, as on QEMU",
             reset=ICC_SRE_EL2_RAO, wmask=RAZ_WI,
             immediate="SRE governs vEL2's own GIC system-register interface"),
    *(_el2_vm(f"ICH_AP0R{n}_EL2", 12, 8, n, 0x480 + 8 * n, f"Virtual group-0 active priorities {n}", fn="gic")
      for n in range(4)),
    *(_el2_vm(f"ICH_AP1R{n}_EL2", 12, 9, n, 0x4A0 + 8 * n, f"Virtual group-1 active priorities {n}", fn="gic")
      for n in range(4)),
    _el2_vm("ICH_HCR_EL2", 12, 11, 0, 0x4C0, "Virtual CPU interface control of the nested VM", fn="gic"),
    _r("ICH_VTR_EL2", 3, 4, 12, 11, 1, "el2", access="ro", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP,
       doc="NEVE trap: read-only, L0 must synthesise it (LR count/priority bits it emulates); no VNCR slot",
       reset=ICH_VTR_VALUE),
    _r("ICH_MISR_EL2", 3, 4, 12, 11, 2, "el2", access="ro", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP,
       doc="Maintenance interrupt status: derived live from the list registers, cannot be logged",
       fn="gic", immediate="it is computed from the list registers when read"),
    _r("ICH_EISR_EL2", 3, 4, 12, 11, 3, "el2", access="ro", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP,
       doc="End-of-interrupt status: derived live from the list registers, cannot be logged",
       fn="gic", immediate="it is computed from the list registers when read"),
    _r("ICH_ELRSR_EL2", 3, 4, 12, 11, 5, "el2", access="ro", traps=_NV, nv2=NV2_TRAP, neve=NEVE_TRAP,
       doc="Empty list-register status: derived live from the list registers, cannot be logged",
       fn="gic", immediate="it is computed from the list registers when read"),
    _el2_vm("ICH_VMCR_EL2", 12, 11, 7, 0x4C8, "Virtual machine control (the VM's ICV state); resets with "
            "VFIQEn and the smallest VBPR0/VBPR1 (GICv3: 5 bits of virtual preemption)", reset=ICH_VMCR_RESET,
            fn="gic"),
    *(_el2_vm(f"ICH_LR{n}_EL2", 12, 12 + n // 8, n % 8, 0x400 + 8 * n, f"List register {n} of the nested VM",
               fn="gic")
      for n in range(16)),

    # ---- _EL12 / _EL02 aliases (op1 = 5) ------------------------------------------
    _el12("SCTLR_EL12", (1, 0, 0), "SCTLR_EL1", "SCTLR_EL1 from a VHE EL2"),
    _el12("CPACR_EL12", (1, 0, 2), "CPACR_EL1", "CPACR_EL1 from a VHE EL2"),
    _el12("TTBR0_EL12", (2, 0, 0), "TTBR0_EL1", "TTBR0_EL1 from a VHE EL2"),
    _el12("TTBR1_EL12", (2, 0, 1), "TTBR1_EL1", "TTBR1_EL1 from a VHE EL2"),
    _el12("TCR_EL12", (2, 0, 2), "TCR_EL1", "TCR_EL1 from a VHE EL2"),
    _el12("SPSR_EL12", (4, 0, 0), "SPSR_EL1", "SPSR_EL1 from a VHE EL2"),
    _el12("ELR_EL12", (4, 0, 1), "ELR_EL1", "ELR_EL1 from a VHE EL2"),
    _el12("AFSR0_EL12", (5, 1, 0), "AFSR0_EL1", "AFSR0_EL1 from a VHE EL2"),
    _el12("AFSR1_EL12", (5, 1, 1), "AFSR1_EL1", "AFSR1_EL1 from a VHE EL2"),
    _el12("ESR_EL12", (5, 2, 0), "ESR_EL1", "ESR_EL1 from a VHE EL2"),
    _el12("FAR_EL12", (6, 0, 0), "FAR_EL1", "FAR_EL1 from a VHE EL2"),
    _el12("MAIR_EL12", (10, 2, 0), "MAIR_EL1", "MAIR_EL1 from a VHE EL2"),
    _el12("AMAIR_EL12", (10, 3, 0), "AMAIR_EL1", "AMAIR_EL1 from a VHE EL2"),
    _el12("VBAR_EL12", (12, 0, 0), "VBAR_EL1", "VBAR_EL1 from a VHE EL2"),
    _el12("CONTEXTIDR_EL12", (13, 0, 1), "CONTEXTIDR_EL1", "CONTEXTIDR_EL1 from a VHE EL2"),
    _el12("CNTKCTL_EL12", (14, 1, 0), "CNTKCTL_EL1", "CNTKCTL_EL1 from a VHE EL2 (no VNCR slot: traps)"),
    _el12("CNTP_TVAL_EL02", (14, 2, 0), "CNTP_TVAL_EL0", "CNTP_TVAL_EL0 from a VHE EL2 (computed view: traps)"),
    _el12("CNTP_CTL_EL02", (14, 2, 1), "CNTP_CTL_EL0", "CNTP_CTL_EL0 from a VHE EL2"),
    _el12("CNTP_CVAL_EL02", (14, 2, 2), "CNTP_CVAL_EL0", "CNTP_CVAL_EL0 from a VHE EL2"),
    _el12("CNTV_TVAL_EL02", (14, 3, 0), "CNTV_TVAL_EL0", "CNTV_TVAL_EL0 from a VHE EL2 (computed view: traps)"),
    _el12("CNTV_CTL_EL02", (14, 3, 1), "CNTV_CTL_EL0", "CNTV_CTL_EL0 from a VHE EL2"),
    _el12("CNTV_CVAL_EL02", (14, 3, 2), "CNTV_CVAL_EL0", "CNTV_CVAL_EL0 from a VHE EL2"),

    # ---- generic timer (non-VHE CNTHCTL_EL2 layout) --------------------------------
    _r("CNTFRQ_EL0", 3, 3, 14, 0, 0, "timer", access="ro",
       el0=(Trap("CNTKCTL_EL1", "EL0PCTEN|EL0VCTEN", when_clear=True),),
       doc="Counter frequency; writable only at the highest EL, read-only at EL1"),
    _r("CNTPCT_EL0", 3, 3, 14, 0, 1, "timer", access="ro", traps=_EL1PCTEN, el0=_EL0PCTEN,
       doc="Physical count; EL1/EL0 reads trap when CNTHCTL_EL2.EL1PCTEN == 0"),
    _r("CNTVCT_EL0", 3, 3, 14, 0, 2, "timer", access="ro", el0=_EL0VCTEN,
       doc="Virtual count (physical count - CNTVOFF_EL2); never trapped without FEAT_ECV"),
    _r("CNTP_TVAL_EL0", 3, 3, 14, 2, 0, "timer", fn="timer", traps=_EL1PCEN, el0=_EL0PTEN,
       doc="EL1 physical timer value (32-bit down-counting view of CVAL); trap when EL1PCEN == 0"),
    _r("CNTP_CTL_EL0", 3, 3, 14, 2, 1, "timer", fn="timer", traps=_EL1PCEN, el0=_EL0PTEN, vncr=0x180, nv2=NV2_MEM,
       doc="EL1 physical timer control; trap when EL1PCEN == 0; NV2 with NV1=1 maps the _EL0 encoding"),
    _r("CNTP_CVAL_EL0", 3, 3, 14, 2, 2, "timer", fn="timer", traps=_EL1PCEN, el0=_EL0PTEN, vncr=0x178, nv2=NV2_MEM,
       doc="EL1 physical timer compare; trap when EL1PCEN == 0; NV2 with NV1=1 maps the _EL0 encoding"),
    _r("CNTV_TVAL_EL0", 3, 3, 14, 3, 0, "timer", fn="timer", el0=_EL0VTEN,
       doc="Virtual timer value (32-bit down-counting view of CVAL); never trapped"),
    _r("CNTV_CTL_EL0", 3, 3, 14, 3, 1, "timer", fn="timer", el0=_EL0VTEN, vncr=0x170, nv2=NV2_MEM,
       doc="Virtual timer control; native under v8.3, VNCR-mapped under NV2 with NV1=1 (QEMU NV2_REDIR_NV1)"),
    _r("CNTV_CVAL_EL0", 3, 3, 14, 3, 2, "timer", fn="timer", el0=_EL0VTEN, vncr=0x168, nv2=NV2_MEM,
       doc="Virtual timer compare; native under v8.3, VNCR-mapped under NV2 with NV1=1 (QEMU NV2_REDIR_NV1)"),

    # ---- GICv3 CPU interface (ICC_*_EL1; ICV_* when HCR_EL2.IMO/FMO route to vGIC) --
    _r("ICC_PMR_EL1", 3, 0, 4, 6, 0, "gic", fn="gic", traps=_TC, doc="Priority mask (ICH_HCR_EL2.TC)"),
    _r("ICC_IAR0_EL1", 3, 0, 12, 8, 0, "gic",
       fn="gic", access="ro", traps=_TALL0, doc="Group-0 interrupt acknowledge (TALL0)"),
    _r("ICC_EOIR0_EL1", 3, 0, 12, 8, 1, "gic",
       fn="gic", access="wo", traps=_TALL0, doc="Group-0 end of interrupt (TALL0)"),
    _r("ICC_HPPIR0_EL1", 3, 0, 12, 8, 2, "gic",
       fn="gic", access="ro", traps=_TALL0, doc="Group-0 highest pending (TALL0)"),
    _r("ICC_BPR0_EL1", 3, 0, 12, 8, 3, "gic", fn="gic", traps=_TALL0, doc="Group-0 binary point (TALL0)"),
    *(_r(f"ICC_AP0R{n}_EL1", 3, 0, 12, 8, 4 + n, "gic", fn="gic", traps=_TALL0,
         doc=f"Group-0 active priorities {n} (TALL0)") for n in range(4)),
    *(_r(f"ICC_AP1R{n}_EL1", 3, 0, 12, 9, n, "gic", fn="gic", traps=_TALL1,
         doc=f"Group-1 active priorities {n} (TALL1)") for n in range(4)),
    _r("ICC_DIR_EL1", 3, 0, 12, 11, 1, "gic", fn="gic", access="wo",
       traps=_TC + (Trap("ICH_HCR_EL2", "TDIR"),), doc="Deactivate interrupt (TC, TDIR)"),
    _r("ICC_RPR_EL1", 3, 0, 12, 11, 3, "gic", fn="gic", access="ro", traps=_TC, doc="Running priority (TC)"),
    # The SGI registers generate interrupts of either group: an EL1 write traps to
    # EL2 when L1 routes either group to itself (HCR_EL2.IMO or FMO; GICv3, as QEMU).
    _r("ICC_SGI1R_EL1", 3, 0, 12, 11, 5, "gic", fn="gic", access="wo", traps=_TC + _SGI,
       doc="Generate group-1 SGI (TC; always traps with HCR_EL2.IMO or FMO)"),
    _r("ICC_ASGI1R_EL1", 3, 0, 12, 11, 6, "gic", fn="gic", access="wo", traps=_TC + _SGI,
       doc="Generate alias group-1 SGI (TC; always traps with HCR_EL2.IMO or FMO)"),
    _r("ICC_SGI0R_EL1", 3, 0, 12, 11, 7, "gic", fn="gic", access="wo", traps=_TC + _SGI,
       doc="Generate group-0 SGI (TC; always traps with HCR_EL2.IMO or FMO)"),
    _r("ICC_IAR1_EL1", 3, 0, 12, 12, 0, "gic",
       fn="gic", access="ro", traps=_TALL1, doc="Group-1 interrupt acknowledge (TALL1)"),
    _r("ICC_EOIR1_EL1", 3, 0, 12, 12, 1, "gic",
       fn="gic", access="wo", traps=_TALL1, doc="Group-1 end of interrupt (TALL1)"),
    _r("ICC_HPPIR1_EL1", 3, 0, 12, 12, 2, "gic",
       fn="gic", access="ro", traps=_TALL1, doc="Group-1 highest pending (TALL1)"),
    _r("ICC_BPR1_EL1", 3, 0, 12, 12, 3, "gic", fn="gic", traps=_TALL1, doc="Group-1 binary point (TALL1)"),
    _r("ISR_EL1", 3, 0, 12, 1, 0, "gic", fn="gic", access="ro",
       doc="Interrupt status: pending IRQ/FIQ (virtual ones when HCR_EL2.IMO/FMO route them)"),
    _r("ICC_CTLR_EL1", 3, 0, 12, 12, 4, "gic", fn="gic", traps=_TC, doc="CPU interface control (TC)"),
    _r("ICC_SRE_EL1", 3, 0, 12, 12, 5, "gic", fn="gic", traps=(Trap("ICC_SRE_EL2", "Enable", when_clear=True),),
       doc="System-register enable, EL1; traps when ICC_SRE_EL2.Enable == 0"),
    _r("ICC_IGRPEN0_EL1", 3, 0, 12, 12, 6, "gic", fn="gic", traps=_TALL0, doc="Group-0 enable (TALL0)"),
    _r("ICC_IGRPEN1_EL1", 3, 0, 12, 12, 7, "gic", fn="gic", traps=_TALL1, doc="Group-1 enable (TALL1)"),

    # ---- PMU (MDCR_EL2.TPM; PMCR_EL0 also TPMCR; EL0 access by PMUSERENR_EL0) --------
    # The registers are neve's PMU (neve/devices/pmu.py).  `el0`: an EL0 access traps to
    # EL1 unless PMUSERENR_EL0.EN, or for some the ER, SW or CR bit, allows it.
    _r("PMINTENSET_EL1", 3, 0, 9, 14, 1, "pmu", fn="pmu", traps=_TPM, doc="Overflow interrupt enable set (TPM)"),
    _r("PMINTENCLR_EL1", 3, 0, 9, 14, 2, "pmu", fn="pmu", traps=_TPM, doc="Overflow interrupt enable clear (TPM)"),
    _r("PMCR_EL0", 3, 3, 9, 12, 0, "pmu", fn="pmu", traps=_TPM + (Trap("MDCR_EL2", "TPMCR"),), el0=_EN,
       doc="PMU control (TPM, TPMCR)"),
    _r("PMCNTENSET_EL0", 3, 3, 9, 12, 1, "pmu", fn="pmu", traps=_TPM, el0=_EN, doc="Counter enable set (TPM)"),
    _r("PMCNTENCLR_EL0", 3, 3, 9, 12, 2, "pmu", fn="pmu", traps=_TPM, el0=_EN, doc="Counter enable clear (TPM)"),
    _r("PMOVSCLR_EL0", 3, 3, 9, 12, 3, "pmu", fn="pmu", traps=_TPM, el0=_EN, doc="Overflow status clear (TPM)"),
    _r("PMSWINC_EL0", 3, 3, 9, 12, 4, "pmu", fn="pmu", access="wo", traps=_TPM,
       el0=(Trap("PMUSERENR_EL0", "EN|SW", when_clear=True),), doc="Software increment (TPM; EL0 with EN or SW)"),
    _r("PMSELR_EL0", 3, 3, 9, 12, 5, "pmu",
       fn="pmu", traps=_TPM, el0=(Trap("PMUSERENR_EL0", "EN|ER", when_clear=True),),
       doc="Event counter select (TPM; EL0 with EN or ER)"),
    _r("PMCEID0_EL0", 3, 3, 9, 12, 6, "pmu", fn="pmu", access="ro", traps=_TPM, el0=_EN, doc="Common event ID 0 (TPM)"),
    _r("PMCEID1_EL0", 3, 3, 9, 12, 7, "pmu", fn="pmu", access="ro", traps=_TPM, el0=_EN, doc="Common event ID 1 (TPM)"),
    _r("PMCCNTR_EL0", 3, 3, 9, 13, 0, "pmu", fn="pmu", traps=_TPM,
       el0=(Trap("PMUSERENR_EL0", "EN|CR", "r", when_clear=True), Trap("PMUSERENR_EL0", "EN", "w", when_clear=True)),
       doc="Cycle counter (TPM; EL0 reads with EN or CR)"),
    _r("PMXEVTYPER_EL0", 3, 3, 9, 13, 1, "pmu", fn="pmu", traps=_TPM, el0=_EN, doc="Selected event type (TPM)"),
    _r("PMXEVCNTR_EL0", 3, 3, 9, 13, 2, "pmu", fn="pmu", traps=_TPM, el0=_EVCNTR, doc="Selected event counter (TPM)"),
    _r("PMUSERENR_EL0", 3, 3, 9, 14, 0, "pmu", fn="pmu", traps=_TPM,
       doc="EL0 PMU access enable (TPM); EL0 reads it, an EL0 write UNDEFs (EL0_READ_ONLY)"),
    _r("PMOVSSET_EL0", 3, 3, 9, 14, 3, "pmu", fn="pmu", traps=_TPM, el0=_EN, doc="Overflow status set (TPM)"),
    *(_r(f"PMEVCNTR{n}_EL0", 3, 3, 14, 8 | n >> 3, n & 7, "pmu", fn="pmu", traps=_TPM, el0=_EVCNTR,
         doc=f"Event counter {n} (TPM; EL0 reads with EN or ER)") for n in range(31)),
    *(_r(f"PMEVTYPER{n}_EL0", 3, 3, 14, 12 | n >> 3, n & 7, "pmu", fn="pmu", traps=_TPM, el0=_EN,
         doc=f"Event type of counter {n} (TPM)") for n in range(31)),
    _r("PMCCFILTR_EL0", 3, 3, 14, 15, 7, "pmu", fn="pmu", traps=_TPM, el0=_EN, doc="Cycle counter filter (TPM)"),

    # ---- debug --------------------------------------------------------------------
    _r("MDSCR_EL1", 2, 0, 0, 2, 2, "debug", traps=_TDA, vncr=0x158, nv2=NV2_MEM, neve=NEVE_VM,
       doc="Monitor debug system control (MDCR_EL2.TDA)"),
    _r("OSLAR_EL1", 2, 0, 1, 0, 4, "debug", access="wo", traps=_TDOSA, doc="OS lock access (MDCR_EL2.TDOSA)"),
    _r("OSLSR_EL1", 2, 0, 1, 1, 4, "debug", access="ro", traps=_TDOSA, reset=0x8,
       doc="OS lock status (TDOSA); OSLM=0b10 (lock implemented), unlocked"),
    _r("OSDLR_EL1", 2, 0, 1, 3, 4, "debug", traps=_TDOSA, doc="OS double lock (MDCR_EL2.TDOSA)"),
    # The breakpoint and watchpoint registers: neve's (neve/devices/debug.py), one set
    # for the CPU, shared by vEL2 and the contexts it runs, as the hardware's.
    *(_r(f"DBG{k}{n}_EL1", 2, 0, 0, n, op2, "debug", fn="debug", traps=_TDA,
         doc=f"{what} {n} (MDCR_EL2.TDA)")
      for k, op2, count, what in (("BVR", 4, 6, "Breakpoint value"), ("BCR", 5, 6, "Breakpoint control"),
                                  ("WVR", 6, 4, "Watchpoint value"), ("WCR", 7, 4, "Watchpoint control"))
      for n in range(count)),
    _r("MDCCSR_EL0", 2, 3, 0, 1, 0, "debug", access="ro", traps=(Trap("MDCR_EL2", "TDA", "r"),),
       el0=(Trap("MDSCR_EL1", "TDCC"),),
       doc="Debug comms channel status (MDCR_EL2.TDA)"),

    # ---- ID registers: values come from the CPU model ------------------------------
    _r("MIDR_EL1", 3, 0, 0, 0, 0, "id", access="ro", doc="Main ID; EL1 reads return VPIDR_EL2, never trapped"),
    _r("MPIDR_EL1", 3, 0, 0, 0, 5, "id", access="ro", doc="Multiprocessor affinity; EL1 reads return VMPIDR_EL2"),
    _r("REVIDR_EL1", 3, 0, 0, 0, 6, "id", access="ro", traps=_TID1, doc="Revision ID (TID1)"),
    _r("ID_AA64PFR0_EL1", 3, 0, 0, 4, 0, "id", access="ro", traps=_TID3, doc="Processor features 0 (TID3)"),
    _r("ID_AA64PFR1_EL1", 3, 0, 0, 4, 1, "id", access="ro", traps=_TID3, doc="Processor features 1 (TID3)"),
    _r("ID_AA64DFR0_EL1", 3, 0, 0, 5, 0, "id", access="ro", traps=_TID3, doc="Debug features 0 (TID3)"),
    _r("ID_AA64DFR1_EL1", 3, 0, 0, 5, 1, "id", access="ro", traps=_TID3, doc="Debug features 1 (TID3)"),
    _r("ID_AA64ISAR0_EL1", 3, 0, 0, 6, 0, "id", access="ro", traps=_TID3, doc="Instruction set attributes 0 (TID3)"),
    _r("ID_AA64ISAR1_EL1", 3, 0, 0, 6, 1, "id", access="ro", traps=_TID3, doc="Instruction set attributes 1 (TID3)"),
    _r("ID_AA64ISAR2_EL1", 3, 0, 0, 6, 2, "id", access="ro", traps=_TID3, doc="Instruction set attributes 2 (TID3)"),
    _r("ID_AA64MMFR0_EL1", 3, 0, 0, 7, 0, "id", access="ro", traps=_TID3, doc="Memory model features 0 (TID3)"),
    _r("ID_AA64MMFR1_EL1", 3, 0, 0, 7, 1, "id", access="ro", traps=_TID3, doc="Memory model features 1 (TID3)"),
    _r("ID_AA64MMFR2_EL1", 3, 0, 0, 7, 2, "id", access="ro", traps=_TID3, doc="Memory model features 2 (TID3)"),
    _r("CCSIDR_EL1", 3, 1, 0, 0, 0, "id", access="ro", traps=_TID2, doc="Cache size ID of the CSSELR level (TID2)"),
    _r("CLIDR_EL1", 3, 1, 0, 0, 1, "id", access="ro", traps=_TID2, doc="Cache level ID (TID2)"),
    _r("AIDR_EL1", 3, 1, 0, 0, 7, "id", access="ro", traps=_TID1, doc="Auxiliary ID (TID1)"),
    _r("CTR_EL0", 3, 3, 0, 0, 1, "id", access="ro", traps=_TID2, el0=(Trap("SCTLR_EL1", "UCT", when_clear=True),),
       doc="Cache type (TID2; SCTLR_EL1.UCT at EL0)"),
    _r("DCZID_EL0", 3, 3, 0, 0, 7, "id", access="ro", doc="DC ZVA block size; never trapped (HCR_EL2.TDZ only sets DZP)"),

    # ---- IMPLEMENTATION DEFINED registers of the Cortex-A72 (HCR_EL2.TIDCP traps them) ----
    # QEMU 10's cortex-a72 has them, RAZ/WI (CBAR_EL1 read-only); Unicorn's lacks the
    # first seven and reads CBAR_EL1 as 0, so neve keeps them (neve/arch/model.py: OWNED).
    *(_r(name, 3, 1, crn, crm, op2, "impdef", wmask=0, doc=f"{what} (Cortex-A72; RAZ/WI as on QEMU)")
      for name, crn, crm, op2, what in (
          ("L2CTLR_EL1", 11, 0, 2, "L2 control"), ("L2ECTLR_EL1", 11, 0, 3, "L2 extended control"),
          ("L2ACTLR_EL1", 15, 0, 0, "L2 auxiliary control"), ("CPUACTLR_EL1", 15, 2, 0, "CPU auxiliary control"),
          ("CPUECTLR_EL1", 15, 2, 1, "CPU extended control"),
          ("CPUMERRSR_EL1", 15, 2, 2, "CPU memory error syndrome"),
          ("L2MERRSR_EL1", 15, 2, 3, "L2 memory error syndrome"))),
    _r("CBAR_EL1", 3, 1, 15, 3, 0, "impdef", access="ro", reset=0x0800_0000,
       doc="Configuration base address: the board's GIC (Cortex-A72; as on QEMU's virt)"),
)

# Registers EL0 may read but not write (a write at EL0 is UNDEFINED).
EL0_READ_ONLY = frozenset({"PMUSERENR_EL0"})

# The cache maintenance EL0 may execute, and the SCTLR_EL1 bit that otherwise traps it to
# EL1 (EC 0x18); every other SYS instruction is UNDEFINED at EL0.
SYS_EL0: dict[str, Trap] = {
    **{op: Trap("SCTLR_EL1", "UCI", when_clear=True) for op in ("DC CVAU", "DC CVAC", "DC CIVAC", "IC IVAU")},
    "DC ZVA": Trap("SCTLR_EL1", "DZE", when_clear=True),
}
# MSR DAIFSet/DAIFClr at EL0 traps to EL1 when SCTLR_EL1.UMA is 0.
DAIF_EL0 = Trap("SCTLR_EL1", "UMA", when_clear=True)
# WFI at EL0 traps to EL1 when SCTLR_EL1.nTWI is 0 (and it would wait).
WFI_EL0 = Trap("SCTLR_EL1", "nTWI", when_clear=True)

# SYS instructions (cache and TLB maintenance) executed at EL1/EL0 that an HCR_EL2 bit
# traps to EL2 (EC 0x18), by the name decode.sys_name() gives them (ARMv8.0 forms).
SYS_TRAPS: dict[str, Trap] = {
    **{f"DC {op}": Trap("HCR_EL2", "TSW") for op in ("ISW", "CSW", "CISW")},
    **{f"DC {op}": Trap("HCR_EL2", "TPCP") for op in ("IVAC", "CVAC", "CIVAC")},
    **{op: Trap("HCR_EL2", "TPU") for op in ("IC IVAU", "IC IALLU", "IC IALLUIS", "DC CVAU")},
    "DC ZVA": Trap("HCR_EL2", "TDZ"),
    **{f"TLBI {op}{s}": Trap("HCR_EL2", "TTLB") for op in ("VMALLE1", "VAE1", "ASIDE1", "VAAE1", "VALE1", "VAALE1")
       for s in ("", "IS")},
}
# HCR_EL2.TIDCP traps EL1 accesses to the IMPLEMENTATION DEFINED system-register space
# (op0 = 3, CRn = 11 or 15), whether or not the CPU implements the encoding; EL0
# accesses are not trapped (IMPLEMENTATION DEFINED; as QEMU's cortex-a72).
TIDCP = Trap("HCR_EL2", "TIDCP")


def impdef(key: tuple) -> bool:
    return key[0] == 3 and key[2] in (11, 15)


BY_NAME: dict[str, SysReg] = {r.name: r for r in REGISTERS}
BY_KEY: dict[tuple[int, int, int, int, int], SysReg] = {r.key: r for r in REGISTERS}


def lookup(op0: int, op1: int, crn: int, crm: int, op2: int) -> SysReg | None:
    return BY_KEY.get((op0, op1, crn, crm, op2))


def neve_slot(r: SysReg, by_name: dict[str, SysReg] | None = None) -> int | None:
    """The NEVE/VNCR page offset an access to `r` is logged at: its own VNCR offset, or
    for an _EL12/_EL02 alias that of the register it names."""
    if r.vncr is not None:
        return r.vncr
    if r.alias is not None:
        target = (by_name or BY_NAME).get(r.alias)
        return target.vncr if target is not None else None
    return None


def check_table(rows: Iterable[SysReg] = REGISTERS) -> list[str]:
    """Return a list of invariant violations (empty when the table is sound)."""
    rows = list(rows)
    errors: list[str] = []
    names: dict[str, SysReg] = {}
    keys: dict[tuple, SysReg] = {}
    offsets: dict[int, SysReg] = {}
    for r in rows:
        if r.name in names:
            errors.append(f"{r.name}: duplicate name")
        names[r.name] = r
        if r.key in keys:
            errors.append(f"{r.name}: encoding {r.encoding} also used by {keys[r.key].name}")
        keys[r.key] = r
        if not (r.op0 in (2, 3) and 0 <= r.op1 < 8 and 0 <= r.crn < 16 and 0 <= r.crm < 16
                and 0 <= r.op2 < 8):
            errors.append(f"{r.name}: encoding {r.encoding} out of range")
        if r.access not in ("rw", "ro", "wo"):
            errors.append(f"{r.name}: bad access {r.access!r}")
        if r.group not in GROUPS:
            errors.append(f"{r.name}: bad group {r.group!r}")
        if r.vncr is not None:
            if r.vncr % 8 or not 0 <= r.vncr < 0x1000:
                errors.append(f"{r.name}: VNCR offset {r.vncr:#x} not 8-aligned inside the page")
            if r.vncr in offsets:
                errors.append(f"{r.name}: VNCR offset {r.vncr:#x} also used by {offsets[r.vncr].name}")
            offsets[r.vncr] = r
        if r.nv2 == NV2_MEM and r.vncr is None:
            errors.append(f"{r.name}: nv2=mem needs a vncr offset")
        if r.nv2 not in (NV2_MEM, NV2_REDIRECT, NV2_TRAP, NV2_NATIVE):
            errors.append(f"{r.name}: bad nv2 class {r.nv2!r}")
        if r.neve not in (NEVE_VM, NEVE_HYP, NEVE_TRAP, NEVE_NATIVE):
            errors.append(f"{r.name}: bad neve class {r.neve!r}")
        for t in r.traps + r.el0:
            try:
                ctrl_bit(t.ctrl, t.bit)
            except KeyError as e:
                errors.append(f"{r.name}: {e.args[0]}")
            if t.rw not in ("r", "w", "rw"):
                errors.append(f"{r.name}: trap {t} has bad rw {t.rw!r}")
            if not isinstance(t.when_clear, bool):
                errors.append(f"{r.name}: trap {t} has non-bool when_clear")
        if (r.group == "el12") != (r.alias is not None):
            errors.append(f"{r.name}: group el12 and alias go together")
        if r.group in ("el2", "el12") and Trap("HCR_EL2", "NV") not in r.traps:
            errors.append(f"{r.name}: EL2 and _EL12/_EL02 encodings must trap with HCR_EL2.NV")
        if r.group in ("el2", "el12") and r.nv2 == NV2_NATIVE:
            errors.append(f"{r.name}: an EL2 or alias encoding cannot be NV2-native")
        if r.fn is not None and r.fn not in FNS:
            errors.append(f"{r.name}: unknown fn {r.fn!r} (one of {', '.join(FNS)})")
        if r.group == "special" and r.traps:
            errors.append(f"{r.name}: special registers never trap")
    for r in rows:
        for what in ("redirect", "shadow", "alias"):
            target = getattr(r, what)
            if target is not None and target not in names:
                errors.append(f"{r.name}: {what} names unknown register {target}")
        if r.nv2 == NV2_REDIRECT and r.redirect is None:
            errors.append(f"{r.name}: nv2=redirect needs a redirect target")
        if r.neve == NEVE_HYP and r.redirect is None:
            errors.append(f"{r.name}: neve=hyp needs a redirect target")
        if r.redirect is not None and r.redirect in names and names[r.redirect].group in ("el2", "el12"):
            errors.append(f"{r.name}: redirect target {r.redirect} must be an EL1 register")
        if r.neve == NEVE_VM and neve_slot(r, names) is None:
            errors.append(f"{r.name}: neve=vm needs a page slot (vncr, or the alias target's)")
    return errors



# --- modes: what L0 sets while L1's virtual EL2 runs, and what an access there does ---
MODES = NESTED_MODES


def _bits(ctrl: str, *names: str) -> int:
    v = 0
    for n in names:
        v |= ctrl_bit(ctrl, n)
    return v


# Control-register values L0 programs while it runs L1's virtual EL2 on EL1, per mode.
#
# v8.3: HCR_EL2.{NV,NV1,TVM,TRVM,TACR,RW}, CPTR_EL2.TCPAC, MDCR_EL2.{TDA,TPM} (the
# Columbia L0: the EL1 registers hold vEL2's own shadow state, so L1's accesses to
# them must trap).  nv2: HCR_EL2.{NV,NV1,NV2,RW} and MDCR_EL2.TPM; the VNCR page makes
# TVM/TRVM/TACR/TDA/TCPAC unnecessary.  neve: as nv2 without TPM (the paper's L0 did
# not trap the PMU).  In every mode L0 also leaves vEL2 the access real EL2 has to the
# physical counter/timer and ICC_SRE_EL1 (CNTHCTL_EL2.{EL1PCTEN,EL1PCEN},
# ICC_SRE_EL2.{SRE,Enable}); those enables trap when *clear*.  And, as for any VM, L0
# routes physical interrupts to itself (HCR_EL2.{IMO,FMO}): L1's ICC_* accesses reach
# L0's virtual CPU interface for L1 and only ICC_SGI*R trap (neve/gic/delivery.py).
_L0_COMMON = {
    "CNTHCTL_EL2": _bits("CNTHCTL_EL2", "EL1PCTEN", "EL1PCEN"),
    "ICC_SRE_EL2": _bits("ICC_SRE_EL2", "SRE", "Enable"),
    "ICH_HCR_EL2": 0,
}
L0_CONTROLS: dict[str, dict[str, int]] = {
    Mode.V83: {
        "HCR_EL2": _bits("HCR_EL2", "NV", "NV1", "TVM", "TRVM", "TACR", "RW", "IMO", "FMO"),
        "CPTR_EL2": _bits("CPTR_EL2", "TCPAC"),
        "MDCR_EL2": _bits("MDCR_EL2", "TDA", "TPM"),
        **_L0_COMMON,
    },
    Mode.NV2: {
        "HCR_EL2": _bits("HCR_EL2", "NV", "NV1", "NV2", "RW", "IMO", "FMO"),
        "CPTR_EL2": 0,
        "MDCR_EL2": _bits("MDCR_EL2", "TPM"),
        **_L0_COMMON,
    },
    Mode.NEVE: {
        "HCR_EL2": _bits("HCR_EL2", "NV", "NV1", "NV2", "RW", "IMO", "FMO"),
        "CPTR_EL2": 0,
        "MDCR_EL2": 0,
        **_L0_COMMON,
    },
}

# The table column that classifies a register in each nested mode, and what each of its
# values does; a value not listed (and v8.3, which has no column) leaves the access to
# the trap conditions under L0_CONTROLS.
MODE_COLUMN: dict[str, tuple[str, dict[str, Access]] | None] = {
    Mode.V83: None,
    Mode.NV2: ("nv2", {NV2_MEM: Access.MEM, NV2_REDIRECT: Access.REDIRECT}),
    Mode.NEVE: ("neve", {NEVE_VM: Access.MEM, NEVE_HYP: Access.REDIRECT, NEVE_TRAP: Access.TRAP}),
}

ACCESS_NATIVE, ACCESS_TRAP, ACCESS_MEM, ACCESS_REDIRECT = Access.NATIVE, Access.TRAP, Access.MEM, Access.REDIRECT


def l0_controls(mode: str) -> dict[str, int]:
    """Control-register values L0 programs while it runs L1's virtual EL2 on EL1."""
    try:
        return dict(L0_CONTROLS[mode])
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}") from None


def vel2_access(reg: str | SysReg, write: bool, mode: str) -> Access:
    """What an MRS (write=False) or MSR (write=True) of `reg` made by L1 at virtual EL2
    does in `mode`: native, trap (to L0), mem (VNCR/NEVE page) or redirect (to the EL1
    register named by the row's `redirect`)."""
    r = BY_NAME[reg] if isinstance(reg, str) else reg
    controls = l0_controls(mode)                # ValueError for an unknown mode
    column = MODE_COLUMN[mode]
    if column is not None:
        field, classes = column
        act = classes.get(getattr(r, field))
        if act is not None:
            return act
    return Access.TRAP if r.trap_reasons(write, controls) else Access.NATIVE


# The trap controls L0 keeps while it runs a kernel at EL1, as KVM/ARM v4.10 does:
# HCR_GUEST_FLAGS (ACTLR_EL1 accesses, SMC and WFI trap), CNTHCTL_EL2 with EL1PCTEN
# set and EL1PCEN clear (physical counter native, physical timer trapped), and
# ICC_SRE_EL2.Enable clear (ICC_SRE_EL1 trapped).
VM_CONTROLS = {"HCR_EL2": ctrl_bit("HCR_EL2", "RW") | ctrl_bit("HCR_EL2", "TACR")
               | ctrl_bit("HCR_EL2", "TSC") | ctrl_bit("HCR_EL2", "TWI")
               | ctrl_bit("HCR_EL2", "VM")
               # Physical IRQs/FIQs go to L0; the VM's ICC_* accesses reach the virtual
               # CPU interface and only ICC_SGI*R trap (neve/gic/delivery.py).
               | ctrl_bit("HCR_EL2", "IMO") | ctrl_bit("HCR_EL2", "FMO"),
               "CNTHCTL_EL2": ctrl_bit("CNTHCTL_EL2", "EL1PCTEN"),
               "ICC_SRE_EL2": ctrl_bit("ICC_SRE_EL2", "SRE")}


# The table is checked when it is built (as KVM checks its trap tables at init): a
# broken row stops neve at import, not in the middle of a guest's run.
_TABLE_ERRORS = check_table()
if _TABLE_ERRORS:
    raise ImportError("neve/arch/sysregs.py: the register table is inconsistent: " + "; ".join(_TABLE_ERRORS))
