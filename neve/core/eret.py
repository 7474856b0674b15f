"""Instructions Unicorn has no hook for, or executes unlike the architecture, found by
scanning guest RAM and given a code hook each.

* ERET/ERETAA/ERETAB: at virtual EL2 the ERET is emulated (neve/el2/vel2.py: it traps to
  L0 under FEAT_NV).  At EL1 (the VM's kernel, the nested VM's) Unicorn's own ERET is
  right, except that it does not implement PSTATE.IL: after an illegal exception
  return, or a return with SPSR.IL set, the next instruction must take an Illegal
  Execution state exception (EC 0x0E), and Unicorn just runs on.  `el1` takes those
  here, before the ERET executes; every other ERET runs natively.
* LDAR/STLR (load-acquire, store-release): they require an aligned address whatever
  the memory type, and Unicorn checks neither (it does check the exclusives); with
  the MMU off the Device-memory check (neve/core/align.py) catches them, with it on
  nothing would.  A misaligned LDAR/STLR takes the alignment fault here, before it
  runs (it comes before any translation fault).

The images are scanned when loaded and RAM again when the guest does its
instruction-cache maintenance (IC IVAU/IALLU), as it must after writing code.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import ctypes
import re

from unicorn import UC_HOOK_CODE
from unicorn.unicorn_py3.unicorn import HOOK_CODE_CFUNC

from neve.core import align, faults
from neve.arch import decode
from neve.arch.platform import RAM_BASE
from neve.arch.exceptions import PSTATE_IF, PSTATE_IL, PSTATE_RESTORED
from neve.core.result import Stop
from neve.devices.pmu import EV_EXC_RETURN
from neve.errors import GuestError, NeveError

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine

# Hardware ELR_EL1 while vEL2 runs: an unbacked address, so a native ERET that no
# code hook caught lands here and is still emulated (the "ERET safety net", vel2.py).
ERET_NET = 0x0FFF_F000
_ALIAS_PAGE = 0x400         # EretHooks.alias's page: Unicorn's TLB page, as the fills that call it
ERET_WORDS = {0xD69F03E0: "ERET", 0xD69F0BFF: "ERETAA", 0xD69F0FFF: "ERETAB"}
_ERET_BYTES = [w.to_bytes(4, "little") for w in ERET_WORDS]
# LDAR{H,,} / STLR{H,,} Rt, [Rn]: size:0b0010001L0:Rs:1:Rt2:Rn:Rt, i.e. 0x08808000 |
# L << 22 | size << 30 (the byte forms cannot be misaligned).  Rs and Rt2 should be
# ones; Unicorn executes the words where they are not (CONSTRAINED UNPREDICTABLE), so
# they are checked too.  A lookahead, so a false match at an unaligned offset cannot
# swallow a real one.
_ACQREL = re.compile(rb"(?=.[\x80-\xff][\x80-\x9f\xc0-\xdf][\x48\x88\xc8])", re.DOTALL)
_ACQREL_MASK, _ACQREL_BITS = 0x3FA0_8000, 0x0880_8000
_HCR_RW, _HCR_TGE = 1 << 31, 1 << 27


class EretHooks:
    def __init__(self, m: Machine) -> None:
        self.m = m
        self.vcpu = m.vcpu                # the vCPU it is built for (its vel2 comes later)
        self.cpu = m.cpu
        self._hooked: dict[int, Callable] = {}     # address -> its handler
        self._fast = self.vcpu.fast          # one compiled hook for them all, if built
        self._install_pending = False       # the compiled check is on its way (between slices)
        self._aliases: dict[int, set[int]] = {}       # PA of a page -> VAs it is hooked at too
        self._installed = False                          # the compiled check is in place
        self._bps: dict[int, Callable[[int], bool]] = {}   # breakpoints (neve/devices/debug.py)
        self._py_hooks: dict[int, int] = {}              # Python path: address -> its Unicorn hook
        self._cfunc = HOOK_CODE_CFUNC(self._code_raw) if self._fast is not None else None
        self._code_seen: set[int] = set()    # EL1 code pages note_code hooked (the PMU's EXC_RETURN)
        self.code_watch = False              # every ERET at EL1 must be seen (the PMU counts EXC_RETURN)
        self._py_pending = False             # the Python path has addresses to hook between slices

    def scan(self, base: int, size: int) -> None:
        """Hook every ERET, LDAR and STLR word in [base, base+size) of RAM.  The
        Python path gives each its own code hook; the compiled path checks them all
        in its instruction counter's hook (Unicorn walks its list of code hooks on
        every instruction: with a hook per address, a kernel image's thousands of
        LDAR/STLR made every instruction cost thousands of checks, and even one more
        hook cost a quarter of a Linux boot)."""
        m = self.m
        lo = max(0, base - RAM_BASE)
        hi = min(base - RAM_BASE + size, len(m.ram))
        self._commit(self._hook_found(lo, hi, RAM_BASE + lo))
        if self._code_seen:         # note_code looks at the code it runs again
            self._code_seen.clear()
            if self._fast is not None:
                ctypes.memset(self._fast.state.code_seen, 0, ctypes.sizeof(self._fast.state.code_seen))
        if self._aliases:           # RAM changed there: its aliases are scanned again
            if size >= 64 * _ALIAS_PAGE:
                self._aliases.clear()
            else:
                for pa in range(base & -_ALIAS_PAGE, base + size, _ALIAS_PAGE):
                    self._aliases.pop(pa, None)

    @property
    def pending(self) -> bool:
        """Addresses are hooked that take effect only between slices (the caller, a
        block hook, stops before the block if they may be in it)."""
        return self._py_pending if self._fast is None else self._install_pending

    def note_code(self, addr: int, size: int) -> bool:
        """EL1 is about to run the block [addr, addr + size) while every ERET at EL1
        must be seen (the PMU counts EXC_RETURN there): hook the ERETs of its pages at
        the VA they run at (`alias`), once per page until code changes (`scan`).  Under
        UC_TLB_CPU only (a fill of the TLB-fill hook aliases what it maps itself).
        True: addresses were newly hooked, in force from the next slice on the Python
        path."""
        new = False
        for va in {addr & -_ALIAS_PAGE, (addr + size - 1) & -_ALIAS_PAGE}:
            if va in self._code_seen:
                continue
            self._code_seen.add(va)
            pa = self.cpu.translate(va, 4)
            if pa is not None and self.alias(va, pa):
                new = True
        return new

    def alias(self, va: int, pa: int) -> bool:
        """Code that runs at a VA other than its PA (Linux's nVHE hypervisor runs the
        kernel's code at its own EL2 VAs): the words of PA's page are hooked at VA's
        page too, so that vEL2's ERETs there are taken with their PC rather
        than by the safety net, and LDAR/STLR get their alignment check.  Called when
        vEL2's translation regime maps code (neve/el2/stage2.py), a page of
        _ALIAS_PAGE bytes at a time, and again after the guest's instruction-cache
        maintenance over it (scan).  A hook whose VA later maps other code only reads
        that instruction and finds nothing to do.  True: addresses were newly hooked."""
        m = self.m
        va, pa = va & -_ALIAS_PAGE, pa & -_ALIAS_PAGE
        lo = pa - RAM_BASE
        if va == pa or lo < 0 or lo + _ALIAS_PAGE > len(m.ram):
            return False
        vas = self._aliases.setdefault(pa, set())
        if va in vas:
            return False
        vas.add(va)
        new = self._hook_found(lo, lo + _ALIAS_PAGE, va)
        self._commit(new)
        return bool(new)

    def _hook_found(self, lo: int, hi: int, at: int) -> list[int]:
        """Hook the words found in RAM[lo:hi] at `at` + their offset from lo; the
        addresses newly hooked."""
        ram = self.m.ram
        if self._fast is not None:                 # the same search, compiled
            found = self._fast.scan(ram, lo, hi)
        else:
            found = ([(i, 0) for pat in _ERET_BYTES for i in _find_all(ram, pat, lo, hi)]
                     + [(mt.start(), 1) for mt in _ACQREL.finditer(ram, lo, hi)])
        new = []
        for i, kind in found:
            a = at + (i - lo)
            if i % 4:
                continue
            h = self._acqrel if kind else self._eret
            old = self._hooked.get(a)
            if old is None:
                self._hooked[a] = h
                new.append(a)
            elif old != h and old != self._word:
                # An alias VA that another mapping gave the other kind of word: both checks
                # (each looks at the word there when it runs).
                self._hooked[a] = self._word
        return new

    def _commit(self, new: list[int]) -> None:
        """Newly hooked addresses: the Python path adds a code hook for each between
        slices; the compiled check takes them at once (its hook sees every instruction),
        unless it is not installed yet."""
        if not new:
            return
        if self._fast is None:
            self._py_pending = True
            self.cpu.between_slices(self._sync_py_hooks)
            return
        if self._installed:
            self._fast.update_code(self._addresses())
        elif not self._install_pending:
            self._install_pending = True
            self.cpu.between_slices(self._rehook)

    def set_breakpoints(self, bps: dict[int, Callable[[int], bool]]) -> None:
        """The addresses of the armed breakpoints, each with its check (called before
        the instruction there runs; True: an exception was taken instead).  In force
        from the next instruction on (after the MSR that armed it)."""
        self._bps = dict(bps)
        if self._fast is not None and self._installed:
            self._fast.update_code(self._addresses())
            return
        if self._fast is None:
            self.cpu.between_slices(self._sync_py_hooks)
        elif not self._install_pending:
            self._install_pending = True
            self.cpu.between_slices(self._rehook)
        self.cpu.end_slice_after_current()

    def _addresses(self) -> list[int]:
        return list(self._hooked.keys() | self._bps.keys())

    def _sync_py_hooks(self) -> None:
        """The Python path: one Unicorn code hook per address hooked or breakpointed."""
        uc = self.m.cpu.uc
        self._py_pending = False
        want = self._hooked.keys() | self._bps.keys()
        for a in [a for a in self._py_hooks if a not in want]:
            uc.hook_del(self._py_hooks.pop(a))
            uc.ctl_remove_cache(a, a + 4)
        for a in want - self._py_hooks.keys():
            self._py_hooks[a] = uc.hook_add(UC_HOOK_CODE, self._dispatch, None, a, a)
            uc.ctl_remove_cache(a, a + 4)

    def _dispatch(self, uc, addr: int, size: int, _) -> None:
        """Before the instruction at `addr`: a breakpoint there first (its exception
        comes before the instruction's own behaviour), then the instruction's hook."""
        bp = self._bps.get(addr)
        if bp is not None and bp(addr):
            return
        h = self._hooked.get(addr)
        if h is not None:
            h(uc, addr, size, None)

    def _rehook(self) -> None:
        """The compiled check (in the instruction counter's hook) over the addresses
        hooked now."""
        self._fast.hook_code(self._cfunc, self._addresses(), None)
        self._installed = True
        self._install_pending = False

    def _code_raw(self, _uch, addr: int, size: int, _data) -> None:
        """The compiled hook found `addr` among the hooked ones (a bare ctypes callback)."""
        try:
            self._dispatch(None, addr, size, None)
        except Exception as e:                  # never let the hook die inside Unicorn
            self.m.fail_in_hook(e if isinstance(e, (NeveError, Stop)) else
                                GuestError(f"internal error in the ERET/LDAR/STLR hook at {addr:#x}: {e!r}"))

    def _eret(self, uc, addr: int, size: int, _) -> None:
        m = self.m
        insn = m.cpu.read_insn(addr)
        if insn not in ERET_WORDS:
            return
        if m.vel2 is not None and m.vel2.active:
            m.vel2.eret(addr, insn)
        else:
            self.el1(addr)

    def _word(self, uc, addr: int, size: int, _) -> None:
        """An address hooked for an ERET through one mapping and an LDAR/STLR through
        another: the check of the word it holds now."""
        if self.m.cpu.read_insn(addr) in ERET_WORDS:
            self._eret(uc, addr, size, None)
        else:
            self._acqrel(uc, addr, size, None)

    def _acqrel(self, uc, addr: int, size: int, _) -> None:
        m = self.m
        cpu = m.cpu
        insn = cpu.read_insn(addr)
        if insn is None or insn & _ACQREL_MASK != _ACQREL_BITS:
            return
        ld = decode.decode_ldst(insn)
        va = ld.address(cpu.base_reg, addr)
        if va % ld.size:
            align.fault(m, ld, va, addr)

    def el1(self, addr: int) -> None:
        """An ERET at EL1: take the Illegal Execution state exception Unicorn would not,
        and an interrupt, pending while masked, that the return unmasks (before the
        instruction at ELR, as on hardware; Unicorn's ERET would go on)."""
        m = self.m
        cpu = m.cpu
        ps = cpu.pstate()
        if (ps >> 2) & 3 != 1:
            return                                  # EL0: UNDEFINED, Unicorn raises it
        m.irq.debug.exception_return(cpu.read_sysreg("ELR_EL1"))     # (software step)
        m.irq.pmu.event(EV_EXC_RETURN, 1)
        spsr = cpu.read_sysreg("SPSR_EL1")
        elr = cpu.read_sysreg("ELR_EL1")
        hcr = m.vel2.get("HCR_EL2") if m.vel2 is not None else _HCR_RW
        illegal = illegal_return(spsr, 1, hcr)
        if illegal == "aarch32":
            return                                  # Unicorn's ERET is right
        if not illegal and not spsr & PSTATE_IL:
            if m.irq.masked and ps & ~spsr & PSTATE_IF:
                cpu.set_pstate(spsr & PSTATE_RESTORED)
                cpu.pc = elr
                m.irq.unmasked()
            return                                  # otherwise Unicorn's ERET is right
        if illegal:
            # PSTATE.EL, SP and nRW stay; IL is set; PC = ELR; then the exception.
            cpu.set_pstate((spsr & PSTATE_RESTORED & ~0x1F & ~PSTATE_IL) | (cpu.pstate() & 0x1F))
        else:
            cpu.set_pstate(spsr & PSTATE_RESTORED & ~PSTATE_IL)
        faults.take_illegal_state(m, elr, PSTATE_IL)


def _find_all(buf, pat: bytes, lo: int, hi: int):
    i = buf.find(pat, lo, hi)
    while i != -1:
        yield i
        i = buf.find(pat, i + 1, hi)


def illegal_return(spsr: int, el_from: int, hcr: int) -> str:
    """Why an exception return from `el_from` to `spsr` is illegal (the Arm ARM's
    IllegalExceptionReturn()), "aarch32" for a legal return to AArch32 state, or ""."""
    m = spsr & 0x1F
    if m & 0x10:
        el = {0x0: 0, 0x1: 1, 0x2: 1, 0x3: 1, 0x7: 1, 0xB: 1, 0xF: 1, 0xA: 2}.get(m & 0xF)
        if el is None or el >= el_from and not (el == 0 and el_from == 0):
            return "AArch32 mode"
        if el == 1 and hcr & (_HCR_RW | _HCR_TGE):
            return "AArch32 EL1 while HCR_EL2.RW=1"
        return "aarch32"
    el = m >> 2
    if el > el_from:
        return "to a higher EL"
    if m & 2 or (el == 0 and m & 1):
        return "reserved M"
    if el == 1 and hcr & _HCR_TGE:
        return "EL1 with HCR_EL2.TGE=1"
    if el < 2 and not hcr & _HCR_RW:
        return "AArch64 EL1/EL0 while HCR_EL2.RW=0"
    return ""
