"""Shadow stage 2: the nested VM's memory as L1's stage 2 composed with L0's map of L1.

When L1 (the guest hypervisor at virtual EL2) ERETs to EL1 with its virtual
HCR_EL2.VM set, the addresses L2 (its nested VM) produces are IPAs of L1's stage 2
(VTTBR_EL2/VTCR_EL2 as L1 set them), and the PAs those give are L1's "physical"
addresses, which L0 maps identically onto the RAM it gave L1 (RAM_BASE ..
RAM_BASE + ram_size) and onto the devices it emulates for L1.  Nothing else exists
for L1: L0's private state (the NEVE/VNCR page, these shadow tables, the emulator's
memory) is not in guest memory at all.

How it runs on Unicorn
----------------------
Unicorn has two TLB modes.  Under UC_TLB_CPU (the default) QEMU's own walker
translates with the hardware EL1 registers: right for the VM, for L1's vEL2 with its
MMU off, and for what L1 runs at EL1 without stage 2.  While L2 runs with VM=1, and
while vEL2 runs with SCTLR_EL2.M=1, neve switches to UC_TLB_VIRTUAL: every miss of
Unicorn's (1 KiB-page) TLB calls `_fill`, which walks the regime in Python with
neve/arch/mmu.py and returns the PA and the permissions.

* L2 (VM=1): stage 1 with L2's EL1 registers (in the hardware while it runs); every
  table-walk IPA and the output IPA go through the shadow stage 2: a cache, per VMID,
  of L1's stage-2 leaf entries (the block or page, S2AP, XN, MemAttr), filled lazily
  on first use by walking L1's tables (which must lie in L1's RAM), then checked
  against L0's map of L1.  A refused fill surfaces from `emu_start` as UcError
  UC_ERR_EXCEPTION with PC on the faulting instruction (no UC_HOOK_INTR call); the
  hook leaves a pending action that the machine's run loop performs:
    - a stage-1 fault: to L2's own EL1 vectors, as faults.py does for the VM;
    - a stage-2 fault (translation, access flag, permission, address size, external
      abort on the stage-2 walk, also on a stage-1 walk: S1PTW): forwarded to vEL2 as
      EC 0x24/0x20 with the ISV syndrome, FAR_EL2 and HPFAR_EL2 (one "abort" trap);
    - an IPA that L1's stage 2 maps to a PA outside L1's RAM and outside every device
      L0 emulates (isolation): L0's own stage 2 of L1 has nothing there, so, as on
      QEMU's virt board for an unbacked PA, the access ends in a synchronous external
      abort (DFSC/IFSC 0x10) taken by the offender: to L2's EL1, or to vEL2 when L1
      set HCR_EL2.TEA (Arm ARM: TEA routes synchronous external aborts to EL2).
      A stage-1 walk of L2 that reaches such a PA is an external abort on the walk
      (FSC 0x14 + level) at L2's EL1.  An L1 stage-2 *table* outside L1's RAM gives a
      stage-2 external abort on the walk, forwarded to vEL2.
* vEL2 with SCTLR_EL2.M=1: the EL2 regime (mmu.Stage1Regime.el2: AP[1] RES1, bit 54
  is XN, no PXN/UXN, no ASID) instead of QEMU's EL1 reading of the same descriptors.
  A fault is taken at vEL2 (EC 0x25/0x21).  The ERET safety net (ELR_EL1 = ERET_NET)
  is recognised here: a fetch there from vEL2 is L1's native ERET.

Invalidation
------------
Unicorn's TLB is flushed on every world switch already (vel2.py), so it never holds
L2's combined entries while L1 runs; what persists is the shadow.  Shadow entries are
dropped exactly when L1 says:
* TLBI IPAS2E1/IPAS2LE1 (IS/OS/nXS): the leaves of the current VMID covering that IPA;
  TLBI RIPAS2(L)E1: those covering the range;
* TLBI VMALLS12E1 (IS/OS): everything of the current VMID;
* TLBI ALLE1 (IS/OS): every VMID;
* VTTBR_EL2/VTCR_EL2: a VMID's entries are tagged with the table base and the VTCR
  format they came from; entering L2 with a different base or format for that VMID
  drops them (a write of the same value, as KVM does on every world switch, keeps
  them).  HCR_EL2.VM=0 does not use the shadow; entries a later VM=1 finds were
  built from the same base/format and not invalidated since, which the architecture
  allows a TLB to keep.
* TLBI ALLE2/VAE2/VALE2 (and ranges): L1's own EL2 regime; Unicorn has no by-page
  flush, so its whole TLB is flushed (it holds only vEL2 entries at that point).
Every drop is counted in `counters`.

Not modelled: hardware access-flag/dirty updates (none), FEAT_XNX, stage-2 MemAttr
effects on alignment (Device memory is not alignment-checked), FEAT_LPA.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import sys
from collections import Counter

from unicorn import UC_HOOK_TLB_FILL, UC_MEM_FETCH, UC_MEM_WRITE, UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE
from unicorn import UC_TLB_CPU, UC_TLB_VIRTUAL
from unicorn.unicorn_py3.unicorn import HOOK_TLB_FILL_CFUNC

from neve.core import align, faults
from neve.arch import decode, mmu, model
from neve.observe import events as ev
from neve.core.eret import ERET_NET
from neve.errors import GuestError, Unsupported
from neve.arch.platform import RAM_BASE, unmodelled_device

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine
    from neve.el2.vel2 import VirtualEL2

HCR_VM = 1 << 0
HCR_DC = 1 << 12
HCR_TEA = 1 << 37
FSC_EXTERNAL = 0x10

_PAGE = 1024                      # Unicorn's TLB page (TARGET_PAGE_BITS = 10 on AArch64)


class _S1WalkAbort(Exception):
    """Raised by the stage-1 walker's read64 when the descriptor's IPA faults at stage 2."""

    def __init__(self, fault: mmu.Fault):
        self.fault = fault


class Leaf:
    """One cached L1 stage-2 leaf (a page or block)."""

    __slots__ = ("pa", "size", "r", "w", "x", "attrs", "level")

    def __init__(self, pa: int, size: int, r: bool, w: bool, x: bool, attrs: int, level: int):
        self.pa, self.size, self.r, self.w, self.x, self.attrs, self.level = pa, size, r, w, x, attrs, level


class VmidShadow:
    """The shadow stage 2 of one VMID: leaves by block size (shift) and index."""

    def __init__(self, vmid: int, baddr: int, vtcr: int):
        self.vmid, self.baddr, self.vtcr = vmid, baddr, vtcr
        self.by_shift: dict[int, dict[int, Leaf]] = {}

    def lookup(self, ipa: int) -> Leaf | None:
        for shift, d in self.by_shift.items():
            leaf = d.get(ipa >> shift)
            if leaf is not None:
                return leaf
        return None

    def insert(self, ipa: int, leaf: Leaf) -> None:
        shift = leaf.size.bit_length() - 1
        self.by_shift.setdefault(shift, {})[ipa >> shift] = leaf

    def drop_range(self, lo: int, hi: int) -> int:
        """Drop every leaf overlapping [lo, hi); returns how many."""
        n = 0
        for shift, d in self.by_shift.items():
            first, last = lo >> shift, (hi - 1) >> shift
            if last - first < len(d):
                for i in range(first, last + 1):
                    if d.pop(i, None) is not None:
                        n += 1
            else:
                for i in [i for i in d if first <= i <= last]:
                    del d[i]
                    n += 1
        return n

    def __len__(self) -> int:
        return sum(len(d) for d in self.by_shift.values())


def vmid_of(vttbr: int, vtcr: int) -> int:
    return (vttbr >> 48) & (0xFFFF if (vtcr >> 19) & 1 else 0xFF)


def tlbi_kind(name: str) -> str:
    """'TLBI IPAS2E1ISNXS' -> 'IPAS2E1'."""
    n = name[5:] if name.startswith("TLBI ") else name
    if n.endswith("NXS"):
        n = n[:-3]
    if n.endswith("IS") or n.endswith("OS"):
        n = n[:-2]
    return n


def _range_tlbi(xt: int, default_gb: int = 12) -> tuple[int, int]:
    """Address range [lo, hi) of a FEAT_TLBIRANGE operand (BaseADDR in granule units)."""
    tg = (xt >> 46) & 3
    gb = {1: 12, 2: 14, 3: 16}.get(tg, default_gb)
    scale = (xt >> 44) & 3
    num = (xt >> 39) & 0x1F
    base = (xt & ((1 << 37) - 1)) << gb
    pages = (num + 1) << (5 * scale + 1)
    return base, base + (pages << gb)


class ShadowStage2:
    def __init__(self, m: Machine, v: VirtualEL2) -> None:
        self.m, self.v, self.cpu = m, v, m.cpu
        self.vmids: dict[int, VmidShadow] = m.stage2_shadows    # the board's, shared by the vCPUs
        self.regime: str | None = None        # None (UC_TLB_CPU), "s2" (L2, VM=1), "el2" (vEL2, MMU on)
        self.cur: VmidShadow | None = None    # the shadow in use while L2 runs
        self._vtcr = self._vttbr = 0
        self.counters: Counter[str] = Counter()
        self._depth = 0
        self._ram_end = RAM_BASE + m.ram_size
        # A bare ctypes callback (the binding's wrapper costs two Python frames a fill).
        self._fill_cfunc = HOOK_TLB_FILL_CFUNC(self._fill)
        # vEL2's translations by (Unicorn page of the VA, access type): (PA page, permissions), for the
        # EL2 regime registers in _el2_key (the "el2" fills).
        self._el2_tlb: dict[tuple[int, int], tuple[int, int]] = {}
        self._el2_key: tuple | None = None
        m.cpu.add_hook_raw(UC_HOOK_TLB_FILL, self._fill_cfunc)

    # --- L0's map of L1 --------------------------------------------------------------
    def l0_backed(self, pa: int) -> bool:
        """Does L0 give L1 something at this physical address (RAM or an emulated device)?"""
        return self.m.backed(pa)

    def _ram64(self, pa: int) -> int:
        """Read a descriptor of L1's physical memory: RAM only (L0's map of L1)."""
        if not (RAM_BASE <= pa and pa + 8 <= self._ram_end):
            raise mmu.ExternalAbort(pa)
        o = pa - RAM_BASE
        return int.from_bytes(self.m.ram[o:o + 8], "little")

    # --- TLB mode ---------------------------------------------------------------------
    def sync(self) -> None:
        """After a world switch or a change of L1's EL2 regime: choose the TLB mode.
        The caller has just flushed Unicorn's TLB."""
        v = self.v
        if v.active:
            want = "el2" if v.get("SCTLR_EL2") & 1 else None
        else:
            # HCR_EL2.DC makes HCR_EL2.VM behave as 1 (and stage 1 as disabled).
            want = "s2" if v.get("HCR_EL2") & (HCR_VM | HCR_DC) else None
            if want:
                self.cur = self.context(v.get("VTTBR_EL2"), v.get("VTCR_EL2"))
        if want != self.regime:
            self.cpu.set_tlb_mode(UC_TLB_VIRTUAL if want else UC_TLB_CPU)
            if self.v.fast is not None:
                self.v.fast.state.tlb_virtual = want is not None    # (the FP block check's reads)
            self.cpu.flush_tlb()
            self.counters["tlb_mode_switches"] += 1
            self.regime = want

    def context(self, vttbr: int, vtcr: int) -> VmidShadow:
        """The shadow of VTTBR_EL2's VMID, valid for this table base and format."""
        self._vttbr, self._vtcr = vttbr, vtcr
        vmid = vmid_of(vttbr, vtcr)
        baddr = vttbr & 0xFFFF_FFFF_FFFE
        fmt = vtcr & 0xFFFFF
        sh = self.vmids.get(vmid)
        if sh is None or sh.baddr != baddr or sh.vtcr != fmt:
            if sh is not None and len(sh):
                self.counters["vmid_flushes"] += 1
            sh = self.vmids[vmid] = VmidShadow(vmid, baddr, fmt)
        return sh

    # --- stage 2 ------------------------------------------------------------------------
    def translate_ipa(self, ipa: int, write: bool = False, execute: bool = False,
                      s1ptw: bool = False, va: int | None = None):
        """IPA -> PA through the shadow (filling it from L1's tables on a miss).
        Returns (pa, leaf) or an mmu.Fault (stage 2)."""
        sh = self.cur
        leaf = sh.lookup(ipa)
        if leaf is None:
            self.counters["s2_walks"] += 1
            t = mmu.walk_stage2(self._ram64, self._vtcr, self._vttbr, ipa, write=write and not s1ptw,
                                execute=execute and not s1ptw, s1ptw=s1ptw, pamax=model.PA_BITS)
            if isinstance(t, mmu.Fault):
                return mmu.Fault(t.kind, t.level, 2, s1ptw, ipa, va, write, execute)
            leaf = Leaf(t.pa & ~(t.block_size - 1), t.block_size, t.readable, t.writable, t.executable,
                        t.attrs, t.level)
            sh.insert(ipa, leaf)
        else:
            self.counters["s2_hits"] += 1
        ok = leaf.r if s1ptw or not (write or execute) else (leaf.x if execute else leaf.w)
        if not ok:
            return mmu.Fault("permission", leaf.level, 2, s1ptw, ipa, va, write, execute)
        return leaf.pa | (ipa & (leaf.size - 1)), leaf

    def _s1_desc_read(self, ipa: int) -> int:
        r = self.translate_ipa(ipa, s1ptw=True)
        if isinstance(r, mmu.Fault):
            raise _S1WalkAbort(r)
        return self._ram64(r[0])

    def _l2_regime(self) -> mmu.Stage1Regime:
        c = self.cpu
        sctlr = c.read_sysreg("SCTLR_EL1")
        if self.v.get("HCR_EL2") & HCR_DC:
            sctlr &= ~1                           # HCR_EL2.DC: stage 1 behaves as disabled
        return mmu.Stage1Regime.el10(sctlr, c.read_sysreg("TCR_EL1"), c.read_sysreg("TTBR0_EL1"),
                                     c.read_sysreg("TTBR1_EL1"), c.read_sysreg("MAIR_EL1"), pamax=model.PA_BITS)

    def translate_l2(self, va: int, write: bool = False, execute: bool = False, el: int = 1):
        """L2's VA -> (PA, readable, writable, executable) through its stage 1 and the
        shadow stage 2, or an mmu.Fault (stage 1 or 2), or ("external", ipa, pa, s1walk)."""
        try:
            t = mmu.walk_stage1(self._s1_desc_read, self._l2_regime(), va, write=write, execute=execute, el=el)
        except _S1WalkAbort as a:
            f = a.fault
            return mmu.Fault(f.kind, f.level, 2, True, f.ipa, va, write, execute)
        if isinstance(t, mmu.Fault):
            return t
        r = self.translate_ipa(t.pa, write, execute, va=va)
        if isinstance(r, mmu.Fault):
            return r
        pa, leaf = r
        if not self.l0_backed(pa):
            return ("external", t.pa, pa)
        return pa, t.readable and leaf.r, t.writable and leaf.w, t.executable and leaf.x

    def translate_el2(self, va: int, write: bool = False, execute: bool = False):
        v = self.v
        regime = mmu.Stage1Regime.el2(v.get("SCTLR_EL2"), v.get("TCR_EL2"), v.get("TTBR0_EL2"), v.get("MAIR_EL2"),
                                      pamax=model.PA_BITS)
        return mmu.walk_stage1(self._ram64, regime, va, write=write, execute=execute, el=2)

    # --- the TLB fill hook ---------------------------------------------------------------
    def _fill(self, _uch, va: int, typ: int, entry_ptr, _data) -> bool:
        """Unicorn's TLB-fill hook: the page of `va` for an access of type `typ`, into
        `entry_ptr` (uc_tlb_entry *); False: no translation (a fault, deferred)."""
        self._depth += 1
        try:
            entry = entry_ptr[0]
            self.counters["fills"] += 1
            execute = typ == UC_MEM_FETCH
            write = typ == UC_MEM_WRITE
            if self.regime == "s2":
                el = (self.cpu.pstate() >> 2) & 3
                if el == 1 and not execute and self._unprivileged_insn():
                    el = 0
                r = self.translate_l2(va, write, execute, el)
                if isinstance(r, tuple) and len(r) == 4:
                    pa, rd, wr, ex = r
                    if execute and self._fetch_from_device(va, pa):
                        return False
                    if execute and self.m.erets.code_watch:     # the PMU counts EXC_RETURN (eret.py)
                        self.m.erets.alias(va, pa)
                    entry.paddr = pa & ~(_PAGE - 1)
                    entry.perms = (UC_PROT_READ if rd else 0) | (UC_PROT_WRITE if wr else 0) | (UC_PROT_EXEC if ex else 0)
                    return True
                self._defer(self._l2_fault, r, va, write, execute, el)
                return False
            if self.regime == "el2":
                if execute and va == ERET_NET & ~(_PAGE - 1):
                    if self._depth == 1:
                        self.m.defer(lambda: self.v.eret(None, None))
                    return False
                # vEL2's own TLB: the translations of its regime survive the world
                # switches (which empty Unicorn's TLB) until a TLBI or a change of the
                # regime's registers, as a TLB's EL2 entries do.
                v = self.v
                key = (v.get("SCTLR_EL2"), v.get("TCR_EL2"), v.get("TTBR0_EL2"), v.get("MAIR_EL2"))
                if key != self._el2_key:
                    self._el2_tlb.clear()
                    self._el2_key = key
                hit = self._el2_tlb.get((va & ~(_PAGE - 1), typ))
                if hit is not None:
                    self.counters["el2_tlb_hits"] += 1
                    entry.paddr, entry.perms = hit
                    if execute:     # (again if the code there changed since: eret.py)
                        self.m.erets.alias(va, hit[0])
                    return True
                t = self.translate_el2(va, write, execute)
                if isinstance(t, mmu.Translation):
                    if execute and self._fetch_from_device(va, t.pa):
                        return False
                    if execute:     # hook its ERETs at the VA it runs at (eret.py)
                        self.m.erets.alias(va, t.pa)
                    entry.paddr = t.pa & ~(_PAGE - 1)
                    entry.perms = ((UC_PROT_READ if t.readable else 0) | (UC_PROT_WRITE if t.writable else 0)
                                   | (UC_PROT_EXEC if t.executable else 0))
                    self._el2_tlb[(va & ~(_PAGE - 1), typ)] = (entry.paddr, entry.perms)
                    return True
                self._defer(self._el2_fault, t, va, write, execute)
                return False
            # Not in a shadowed regime (should not be reached): flat.
            entry.paddr = va & ~(_PAGE - 1)
            entry.perms = UC_PROT_READ | UC_PROT_WRITE | UC_PROT_EXEC
            return True
        except BaseException as e:  # never let the hook die inside Unicorn
            err = e if not isinstance(e, Exception) else GuestError(
                f"internal error in the shadow stage-2 TLB fill for VA {va:#x}: {e!r}")

            def fail():
                raise err
            self.m.defer(fail)
            return False
        finally:
            self._depth -= 1

    def _fetch_from_device(self, va: int, pa: int) -> bool:
        """Code behind a device (L1's tables map it there): QEMU executes it, Unicorn
        cannot; say so (as neve/core/faults.py: fetch_from_device for a single stage)."""
        if RAM_BASE <= pa < self._ram_end or self.m.executable(pa):
            return False
        err = Unsupported(f"instruction fetch from the QEMU virt {self.m.device_at(pa)} at PA {pa:#x} "
                          f"(VA {va:#x}, through L1's tables)", self.cpu.pc)

        def fail():
            raise err
        self._defer(fail)
        return True

    def _defer(self, fn, *args) -> None:
        if self._depth == 1:      # not a probe nested in another fill
            self.m.defer(lambda: fn(*args))

    def _unprivileged_insn(self) -> bool:
        """Is the instruction at PC an LDTR/STTR (EL1 access checked as EL0)?  Unicorn
        gives the hook no MMU index, so look: the code page is in the TLB (it is being
        executed); a miss re-enters this hook as a probe, which sets nothing pending."""
        insn = self.cpu.read_insn(self.cpu.pc)
        return insn is not None and insn & 0x3F20_0C00 == 0x3800_0800

    def _insn_at(self, pc: int) -> int | None:
        """The instruction word at L2's or vEL2's PC, read through the Python walk (safe
        inside the TLB-fill hook).  When the walk no longer translates PC (L1 changed a
        table without TLB maintenance, and the CPU runs on its TLB entry), the word is
        read through Unicorn's TLB, which holds the page being executed (a miss
        re-enters the fill hook as a probe)."""
        if self.regime == "s2":
            r = self.translate_l2(pc, execute=True, el=(self.cpu.pstate() >> 2) & 3)
            if not (isinstance(r, tuple) and len(r) == 4):
                return self.cpu.read_insn(pc)
            pa = r[0]
        elif self.regime == "el2":
            t = self.translate_el2(pc, execute=True)
            if not isinstance(t, mmu.Translation):
                return self.cpu.read_insn(pc)
            pa = t.pa
        else:
            return self.cpu.read_insn(pc)
        if not (RAM_BASE <= pa and pa + 4 <= self._ram_end):
            return None
        o = pa - RAM_BASE
        return int.from_bytes(self.m.ram[o:o + 4], "little")

    # --- faults ---------------------------------------------------------------------------
    def _access(self, va_page: int, execute: bool):
        """(exact VA, instruction word, decoded LdSt) of the access that missed."""
        pc = self.cpu.pc
        if execute:
            va = pc if pc & ~(_PAGE - 1) == va_page else va_page
            return va, None, None
        insn = self._insn_at(pc)
        ld = decode.decode_ldst(insn) if insn is not None else None
        va = va_page
        if ld is not None:
            cpu = self.cpu
            try:
                a = ld.address(cpu.base_reg, pc, exact=True)
            except Exception:
                a = None
            if a is not None and (a & ~(_PAGE - 1) == va_page or (a + ld.size * ld.nregs - 1) & ~(_PAGE - 1) == va_page):
                va = a if a & ~(_PAGE - 1) == va_page else va_page
        return va, insn, ld

    def fetch_fault(self, r, pc: int, el: int, spsr_or: int = 0) -> None:
        """Take the Instruction Abort of fetching `pc` (`r`: translate_l2's fault) as the
        TLB fill would; for the fetch Unicorn does not make (neve/core/faults.py:
        take_illegal_state).  `spsr_or`: as for exit_to_vel2."""
        self._l2_fault(r, pc & ~(_PAGE - 1), False, True, el, at=pc, spsr_or=spsr_or)

    def _l2_fault(self, r, va_page: int, write: bool, execute: bool, el: int, at: int | None = None,
                  spsr_or: int = 0) -> None:
        m, v, cpu = self.m, self.v, self.cpu
        if at is None:
            pc = cpu.pc
            va, insn, ld = self._access(va_page, execute)
        else:
            pc = va = at
            insn = ld = None
        if not execute and ld is not None:
            # Alignment (neve/core/align.py): an exclusive's before anything; Device memory's
            # (L2's stage 1 off: Device-nGnRnE) after stage 1's faults and before any
            # stage-2 fault (Arm ARM R_XCHFJ).  QEMU 10 does not check Device alignment
            # when stage 1 is off under stage 2.
            start = ld.address(cpu.base_reg, pc)
            s1 = isinstance(r, mmu.Fault) and r.stage == 1
            if align.misaligned_first(ld, start, m) or not s1 and align.misaligned(m, ld, start):
                align.fault(m, ld, start, pc)
                return
        if isinstance(r, mmu.Fault) and r.stage == 1:
            # L2's own stage-1 fault: the hardware takes it to L2's EL1, L0 is not involved.
            self.counters["stage1_faults"] += 1
            same = (cpu.pstate() >> 2) & 3 != 0
            if execute:
                m.deliver_sync(decode.esr(decode.EC_IABT_CUR if same else decode.EC_IABT_LOW, r.fsc), pc, va,
                               spsr_or=spsr_or)
            else:
                iss = decode.data_abort_iss(ld, fsc=r.fsc, with_syndrome=False)
                m.deliver_sync(decode.esr(decode.EC_DABT_CUR if same else decode.EC_DABT_LOW, iss), pc, va)
            return
        if isinstance(r, mmu.Fault):
            # A stage-2 fault of L1's tables: forwarded to vEL2.
            self.counters["stage2_faults"] += 1
            kind = "instruction" if execute else "data"
            if execute:
                iss = r.fsc | (int(r.s1ptw) << 7)
                esr = decode.esr(decode.EC_IABT_LOW, iss)
            else:
                iss = decode.data_abort_iss(ld, fsc=r.fsc, s1ptw=r.s1ptw, with_syndrome=True)
                esr = decode.esr(decode.EC_DABT_LOW, iss)
            rw = "" if execute else ("w" if write else "r")
            m.trap(ev.ABORT, f"stage-2 {kind} abort", rw, r.ipa, pc=pc, insn=insn, forwarded=True,
                   reason=f"{mmu.describe(r)} in L1's stage 2 (HCR_EL2.VM set by L1): forwarded to vEL2")
            v.exit_to_vel2(esr, pc, far=va, hpfar=r.hpfar, why=f"stage-2 {kind} abort", spsr_or=spsr_or)
            return
        # ("external", ipa, pa): L1's stage 2 points outside what L0 gave L1.
        _, ipa, pa = r
        if not execute and ld is not None and at is None:
            # A register's access that crosses into a page that does not translate takes
            # that page's fault: QEMU translates both pages before it accesses either.
            second = faults.other_page(ld, ld.address(cpu.base_reg, pc), va)
            r2 = self.translate_l2(second, write, False, el) if second is not None else None
            if isinstance(r2, mmu.Fault):
                self._l2_fault(r2, second, write, execute, el)
                return
        dev = unmodelled_device(pa)
        if dev is not None:
            # A device QEMU's virt board has and neve does not model: not an abort.
            raise Unsupported(f"access to the QEMU virt {dev} at PA {pa:#x} (IPA {ipa:#x} in L1's stage 2)", pc)
        self.counters["external_aborts"] += 1
        rw = "" if execute else ("w" if write else "r")
        to_vel2 = bool(v.get("HCR_EL2") & HCR_TEA)
        m.trap(ev.ABORT, "external abort (outside L1's memory)", rw, pa, pc=pc, insn=insn, forwarded=to_vel2,
               reason=f"IPA {ipa:#x} maps to PA {pa:#x} in L1's stage 2, which L0's stage 2 of L1 does not map: "
                      f"synchronous external abort" + (" routed to vEL2 by HCR_EL2.TEA" if to_vel2 else " to L2"))
        if execute:
            iss = FSC_EXTERNAL
        elif ld is not None:
            iss = decode.data_abort_iss(ld, fsc=FSC_EXTERNAL, with_syndrome=False)
        else:
            iss = (int(write) << 6) | FSC_EXTERNAL
        if to_vel2:
            ec = decode.EC_IABT_LOW if execute else decode.EC_DABT_LOW
            v.exit_to_vel2(decode.esr(ec, iss), pc, far=va, hpfar=(ipa >> 12 & ((1 << 40) - 1)) << 4,
                           why="external abort", spsr_or=spsr_or)
            return
        same = (cpu.pstate() >> 2) & 3 != 0
        if execute:
            ec = decode.EC_IABT_CUR if same else decode.EC_IABT_LOW
        else:
            ec = decode.EC_DABT_CUR if same else decode.EC_DABT_LOW
        m.take_el1(decode.esr(ec, iss), pc, va, spsr_or=spsr_or)

    def _el2_fault(self, t, va_page: int, write: bool, execute: bool) -> None:
        """A fault of L1's own EL2 stage 1: taken at vEL2 (EC 0x21/0x25)."""
        cpu = self.cpu
        pc = cpu.pc
        va, insn, ld = self._access(va_page, execute)
        if not execute and ld is not None:
            # An exclusive's or SCTLR_EL2.A's alignment fault comes before translation.
            start = ld.address(cpu.base_reg, pc)
            if align.misaligned_first(ld, start, self.m):
                align.fault(self.m, ld, start, pc)
                return
        self.counters["el2_faults"] += 1
        if execute:
            self.v.take_current(decode.esr(decode.EC_IABT_CUR, t.fsc), pc, va)
        else:
            iss = decode.data_abort_iss(ld, fsc=t.fsc, with_syndrome=False)
            self.v.take_current(decode.esr(decode.EC_DABT_CUR, iss), pc, va)

    # --- TLB maintenance ---------------------------------------------------------------------
    def tlbi(self, name: str, xt: int) -> None:
        """An EL2/stage-2 TLBI L1 executed at vEL2 (trapped by L0)."""
        kind = tlbi_kind(name)
        c = self.counters
        if kind in ("IPAS2E1", "IPAS2LE1", "RIPAS2E1", "RIPAS2LE1"):
            sh = self._current_vmid_shadow()
            if kind.startswith("R"):
                lo, hi = _range_tlbi(xt, 12)
            else:
                lo = (xt & ((1 << 36) - 1)) << 12
                hi = lo + 4096
            c["tlbi_ipa"] += 1
            if sh is not None:
                c["ipa_drops"] += sh.drop_range(lo, hi)
            return
        if kind == "VMALLS12E1":
            sh = self._current_vmid_shadow()
            c["tlbi_vmalls12e1"] += 1
            if sh is not None and len(sh):
                c["vmid_flushes"] += 1
                sh.by_shift.clear()
            # Stage 1 of the current VMID: while vEL2 runs Unicorn's TLB holds no L2 entry.
            return
        if kind == "ALLE1":
            c["tlbi_alle1"] += 1
            if any(len(s) for s in self.vmids.values()):
                c["all_flushes"] += 1
            self.vmids.clear()
            return
        # EL2 regime (ALLE2, VAE2, VALE2, RVAE2, RVALE2) or anything unknown: Unicorn
        # cannot flush by page; its TLB holds only vEL2 entries now.
        c["tlbi_el2"] += 1
        c["tlb_flushes"] += 1
        self._el2_tlb.clear()
        self.cpu.flush_tlb()

    def _current_vmid_shadow(self) -> VmidShadow | None:
        vttbr, vtcr = self.v.get("VTTBR_EL2"), self.v.get("VTCR_EL2")
        return self.vmids.get(vmid_of(vttbr, vtcr))

    # --- figures ------------------------------------------------------------------------------
    def entries(self) -> int:
        return sum(len(s) for s in self.vmids.values())

    def memory_bytes(self) -> int:
        """Host memory held by the shadow tables (dicts and leaf objects)."""
        n = sys.getsizeof(self.vmids)
        for s in self.vmids.values():
            n += sys.getsizeof(s) + sys.getsizeof(s.by_shift)
            for d in s.by_shift.values():
                n += sys.getsizeof(d)
                for k, leaf in d.items():
                    n += sys.getsizeof(k) + sys.getsizeof(leaf)
        return n
