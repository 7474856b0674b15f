"""Aborts: rebuilding the syndrome Unicorn does not expose.

Two sources: an access to a physical address nothing backs (Unicorn's unmapped-memory
hook; the guest gets a synchronous external abort, as on QEMU's virt board), and a
fault of the guest's own stage-1 translation (Unicorn raises the exception without
the syndrome; neve walks the tables itself to find the fault kind and level).

An access that crosses a page boundary is checked on both pages: when the first page
translates, the fault is the second page's, with FAR its first byte (QEMU translates
both pages of an access before it makes either part; Unicorn may already have made
the first register of a pair).  When the first part has nothing behind it and the
second page does not translate, the translation fault is taken, not the external
abort.  The nested VM's and vEL2's own regimes do the same in neve/el2/stage2.py.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from unicorn import UC_MEM_FETCH_UNMAPPED, UC_MEM_WRITE_UNMAPPED

from neve.core import align
from neve.arch import decode, mmu, model
from neve.observe import events as ev
from neve.errors import Unsupported

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine

FSC_EXTERNAL = 0x10
FSC_ALIGNMENT = 0x21


def _same_el(m: Machine) -> bool:
    # Exceptions of EL1 code (or of vEL2 code, which is EL1 on the hardware) taken to
    # the same level use the "current EL" ECs; EL0 ones the "lower EL" ECs.
    return m.cpu.el() != 0


def _ldst_at(m: Machine, pc: int):
    insn = m.cpu.read_insn(pc)
    if insn is None:
        return None, None
    return insn, decode.decode_ldst(insn)


def _va_of(m: Machine, ld, pc: int, exact: bool = False) -> int:
    cpu = m.cpu
    return ld.address(cpu.base_reg, pc, exact)


def external_abort(m: Machine, access: int, addr: int, pc: int, level: str) -> None:
    """Synchronous external abort for an access to an unbacked physical address."""
    same = _same_el(m)
    if access == UC_MEM_FETCH_UNMAPPED:
        m.trap(ev.ABORT, "instruction fetch from unbacked PA", "r", addr, pc=pc,
               reason="stage-2 fault in L0's tables: no memory at this physical address")
        ec = decode.EC_IABT_CUR if same else decode.EC_IABT_LOW
        m.deliver_sync(decode.esr(ec, FSC_EXTERNAL), pc, pc)
        return
    insn, ld = _ldst_at(m, pc)
    write = access == UC_MEM_WRITE_UNMAPPED
    va = addr
    if ld is not None:
        # FAR is the VA of the first byte with nothing behind it.  Unicorn reports
        # that byte's *physical* address; its page offset (the same in VA and PA)
        # places it inside the decoded access, which may straddle a page boundary.
        start = _va_of(m, ld, pc)
        if align.misaligned(m, ld, start):           # checked before the access is made
            align.fault(m, ld, start, pc)
            return
        # DC ZVA: the block is one access, reported at its (aligned) start, as QEMU.
        va = start if ld.align_down else start + ((addr - start) & 0xFFF)
        t = _other_page_fault(m, ld, start, va)
        if t is not None:
            # The register's access crosses into a page that does not translate: QEMU
            # translates both pages before it accesses either, so that fault is taken.
            ec = decode.EC_DABT_CUR if same else decode.EC_DABT_LOW
            m.deliver_sync(decode.esr(ec, decode.data_abort_iss(ld, fsc=t.fsc, with_syndrome=False)), pc, t.va)
            return
    m.trap(ev.ABORT, f"{'write' if write else 'read'} of unbacked PA", "w" if write else "r", addr, pc=pc,
           insn=insn, reason="stage-2 fault in L0's tables: no memory at this physical address")
    ec = decode.EC_DABT_CUR if same else decode.EC_DABT_LOW
    if ld is not None:
        # QEMU's virt board reports ExT (ISS bit 9) = 0 for these: ESR 0x96000010.
        iss = decode.data_abort_iss(ld, fsc=FSC_EXTERNAL, with_syndrome=False)
    else:
        iss = (int(write) << 6) | FSC_EXTERNAL
    m.deliver_sync(decode.esr(ec, iss), pc, va)


def _other_page_fault(m: Machine, ld: decode.LdSt, start: int, va: int) -> mmu.Fault | None:
    """The byte at `va` of the access `ld` (from `start`) has nothing behind it: the
    stage-1 fault of the next page when the one register's access that holds `va`
    crosses into it (in a single-stage regime; the shadow stage 2 translates both
    pages itself).  Unicorn makes the first part of an access before it translates the
    second page; QEMU, and the architecture's order, translate the whole access first."""
    second = other_page(ld, start, va)
    if second is None:
        return None
    s2 = m.vel2.s2 if m.vel2 is not None else None
    if s2 is not None and s2.regime == "el2":           # vEL2 with its MMU on
        t = s2.translate_el2(second, write=ld.write)
    elif s2 is not None and s2.regime == "s2":          # the nested VM: stage2.py
        return None
    else:
        t = mmu.walk_stage1(read64_phys(m), stage1_regime(m), second, write=ld.write, el=access_el(m, ld))
    return t if isinstance(t, mmu.Fault) else None


def other_page(ld: decode.LdSt, start: int, va: int) -> int | None:
    """The first byte of the next page when the one register's access of `ld` (from
    `start`) that holds the byte at `va` crosses into it from `va`'s page, else None."""
    if ld.align_down or ld.cm:
        return None
    i = min(max((va - start) // ld.size, 0), ld.nregs - 1)
    lo = (start + i * ld.size) & decode.MASK64
    last = (lo + ld.size - 1) & decode.MASK64
    if not (last ^ lo) & ~(PAGE - 1) or (va ^ last) & ~(PAGE - 1) == 0:
        return None                     # one page, or `va` is already on the second
    return last & ~(PAGE - 1)


def stage1_regime(m: Machine):
    cpu = m.cpu
    return mmu.Stage1Regime.el10(cpu.read_sysreg("SCTLR_EL1"), cpu.read_sysreg("TCR_EL1"),
                                 cpu.read_sysreg("TTBR0_EL1"), cpu.read_sysreg("TTBR1_EL1"),
                                 cpu.read_sysreg("MAIR_EL1"), pamax=model.PA_BITS)


def read64_phys(m: Machine):
    def rd(pa: int) -> int:
        try:
            return int.from_bytes(m.cpu.uc.mem_read(pa, 8), "little")
        except Exception:
            raise mmu.ExternalAbort(pa) from None
    return rd


def fetch_from_device(m: Machine, pc: int, pa: int | None = None) -> None:
    """Instruction fetch from a device region (Unicorn refuses it, as an abort or as a
    fetch-protection error): raises Unsupported naming the device, or returns if the
    address (stage 1 of the running regime) is in no device region."""
    if pa is None:
        t = mmu.walk_stage1(read64_phys(m), stage1_regime(m), pc, execute=True, el=m.cpu.el())
        if isinstance(t, mmu.Fault):
            return
        pa = t.pa
    dev = m.device_at(pa)
    if dev is not None:
        raise Unsupported(f"instruction fetch from the QEMU virt {dev} at address {pa:#x}", pc)


def take_illegal_state(m: Machine, pc: int, spsr_or: int = 0) -> None:
    """The instruction at `pc` runs in Illegal Execution state (PSTATE.IL), which
    Unicorn does not fetch it in: it takes its fetch's Instruction Abort if the fetch
    faults (stage 1, L1's stage 2, or an external abort: they have the higher
    priority), else the Illegal Execution state exception (EC 0x0E).  `spsr_or`: the
    IL bit when the CPU's PSTATE does not hold it."""
    if m.irq.debug.step_enabled():
        # Software step's Active-pending state would have the higher priority (Arm
        # ARM), and Unicorn, which does not fetch in Illegal Execution state, does not
        # take it here.
        raise Unsupported("software step (MDSCR_EL1.SS) in Illegal Execution state", pc)
    v = m.vel2
    s2 = v.s2 if v is not None else None
    el = m.cpu.el()
    if s2 is not None and s2.regime == "s2":           # the nested VM: both stages
        r = s2.translate_l2(pc, execute=True, el=el)
        if isinstance(r, mmu.Fault) or r[0] == "external":
            s2.fetch_fault(r, pc, el, spsr_or)
            return
    else:
        if s2 is not None and s2.regime == "el2":      # vEL2 with L1's EL2 MMU on
            t = s2.translate_el2(pc, execute=True)
        else:
            t = mmu.walk_stage1(read64_phys(m), stage1_regime(m), pc, execute=True, el=el)
        ec = decode.EC_IABT_CUR if el != 0 else decode.EC_IABT_LOW
        if isinstance(t, mmu.Fault):
            m.deliver_sync(decode.esr(ec, t.fsc), pc, pc, spsr_or=spsr_or)
            return
        pa = t.pa
        if not m.backed(pa):
            m.trap(ev.ABORT, "instruction fetch from unbacked PA", "r", pa, pc=pc,
                   reason="stage-2 fault in L0's tables: no memory at this physical address")
            m.deliver_sync(decode.esr(ec, FSC_EXTERNAL), pc, pc, spsr_or=spsr_or)
            return
    m.deliver_sync(decode.esr(decode.EC_ILLEGAL, 0), pc, spsr_or=spsr_or)


def mmu_abort(m: Machine, prefetch: bool, pc: int) -> None:
    """A fault raised by the hardware's own stage-1 walk of the running regime."""
    cpu = m.cpu
    el = cpu.el()
    same = el != 0
    regime = stage1_regime(m)
    if prefetch:
        t = mmu.walk_stage1(read64_phys(m), regime, pc, execute=True, el=el)
        if not isinstance(t, mmu.Fault):
            if pc == 0 and m.executable(t.pa):
                # Unicorn stopping at emu_start's end address 0 (CPU.run): end the
                # slice with nothing executed; the next one runs on from 0.
                m.cpu.pc = 0
                m.cpu.stop_before_current()
                return
            fetch_from_device(m, pc, t.pa)
            raise Unsupported("instruction abort that the page tables do not explain", pc)
        ec = decode.EC_IABT_CUR if same else decode.EC_IABT_LOW
        m.deliver_sync(decode.esr(ec, t.fsc), pc, pc)
        return
    insn, ld = _ldst_at(m, pc)
    if ld is None:
        raise Unsupported(f"data abort on an instruction neve cannot decode ({insn:#010x})" if insn is not None
                          else "data abort with an unreadable instruction", pc)
    va = _va_of(m, ld, pc)
    if align.misaligned(m, ld, va):
        # Before translation: an exclusive's and SCTLR_EL1.A's always; with the MMU
        # off, Device memory's too, before the address-size check, as QEMU 10 orders
        # them (neve/core/align.py).
        align.fault(m, ld, va, pc)
        return
    ec = decode.EC_DABT_CUR if same else decode.EC_DABT_LOW
    rd = read64_phys(m)
    far = _va_of(m, ld, pc, exact=True)      # DC ZVA: the register's VA
    acc_el = access_el(m, ld)
    t = mmu.walk_stage1(rd, regime, va, write=ld.write, el=acc_el)
    second = second_page(ld, va)
    if not isinstance(t, mmu.Fault) and second is not None:
        # The first page translates: the access crosses into a second page that does
        # not (QEMU translates both before it accesses either; FAR is the first byte
        # of the second page).  Unicorn may have made the first part of a pair.
        t, far = mmu.walk_stage1(rd, regime, second, write=ld.write, el=acc_el), second
    if not isinstance(t, mmu.Fault):
        raise Unsupported(f"data abort at VA {va:#x} that the page tables do not explain", pc)
    iss = decode.data_abort_iss(ld, fsc=t.fsc, with_syndrome=False)
    m.deliver_sync(decode.esr(ec, iss), pc, far)


PAGE = 4096          # the smallest translation granule: a page boundary is a multiple


def access_el(m: Machine, ld: decode.LdSt) -> int:
    """The EL whose permissions an access is checked with: LDTR/STTR at EL1 are
    checked as EL0's (vEL2 runs at EL1 too, but its regime has no EL0 permissions)."""
    el = m.cpu.el()
    return 0 if ld.unpriv and el == 1 and not (m.vel2 is not None and m.vel2.active) else el


def span(ld: decode.LdSt) -> int:
    """How many bytes from its first address an access covers (DC ZVA: its block,
    aligned; other cache maintenance and AT: one byte)."""
    if ld.align_down:
        return ld.size
    if ld.cm:
        return 1
    return ld.size * ld.nregs


def second_page(ld: decode.LdSt, va: int) -> int | None:
    """The first byte of the next page when the access at `va` crosses a 4 KiB
    boundary (the only one that can separate two translations), else None."""
    last = (va + span(ld) - 1) & decode.MASK64
    if (last ^ va) & ~(PAGE - 1):
        return last & ~(PAGE - 1)
    return None
