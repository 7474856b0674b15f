"""FP/SIMD access traps, which Unicorn never raises.

Unicorn builds QEMU with `fp_exception_el()` returning 0: CPACR_EL1.FPEN and
CPTR_EL2.TFP are stored but never trap.  A guest that runs with FP disabled and
relies on the trap (a hypervisor switching FP state lazily with CPTR_EL2.TFP, as
KVM does; a kernel restoring a task's FP registers on first use) would run on with
someone else's FP registers.  neve raises the traps itself:

* `route()`: where an FP/SIMD access of the running code goes now: to EL1
  (CPACR_EL1.FPEN 0b00/0b10, or 0b01 at EL0), to vEL2 (L1's CPTR_EL2.TFP, for what
  L1 runs at EL1/EL0), to vEL2 itself (CPTR_EL2.TFP while vEL2 runs), or nowhere;
* from the first time it could go somewhere (`sync`, after CPACR_EL1/CPTR_EL2 changes
  and world switches), a block hook looks at each translation block before it runs
  (doing nothing while FP cannot trap): the
  allocated FP/SIMD instructions in it are found once per block (decode.classify,
  and cpu.uc_implements for allocation) and cached; when there is one and FP traps
  at the current EL, the CPU stops at the block's start, runs exactly up to that
  instruction (the hook held off), and takes the trap (EC 0x07) there;
* MRS/MSR of FPCR/FPSR trap the same way (neve/core/machine.py).
Until FP is first disabled nothing is hooked.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from unicorn.unicorn_py3.unicorn import HOOK_CODE_CFUNC

from neve.arch import decode, sysregs
from neve.observe import events as ev
from neve.core.cpu import uc_implements
from neve.errors import GuestError

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine

_KEY_CPACR = sysregs.BY_NAME["CPACR_EL1"].key
_KEY_TTBR0, _KEY_TTBR1 = sysregs.BY_NAME["TTBR0_EL1"].key, sysregs.BY_NAME["TTBR1_EL1"].key
CPTR_TFP = 1 << 10
# CPACR_EL1.FPEN -> the ELs (bit 0: EL0, bit 1: EL1) whose FP accesses trap to EL1.
_FPEN_TRAPS = {0b00: 0b11, 0b01: 0b01, 0b10: 0b11, 0b11: 0}


class FPTraps:
    def __init__(self, m: Machine) -> None:
        self.m = m
        self.vcpu = m.vcpu                # the vCPU it is built for (its vel2 comes later)
        self.cpu = m.cpu
        self._hook = None
        self._installing = False             # the hook is installed, or will be between slices
        self._fast = self.vcpu.fast          # the compiled block hook in front, if built
        self._want = 0
        self._until: int | None = None
        self._blocks: dict[tuple[int, int, int], tuple[int, ...]] = {}
        self._by_page: dict[int, list] = {}  # VA page -> the keys of _blocks on it
        # (TTBR0_EL1, TTBR1_EL1) the running code translates through, read once after
        # each regime change (neve makes every write to them: neve/core/machine.py).
        self._space: tuple[int, int] | None = None
        self._cfunc = HOOK_CODE_CFUNC(self._block_raw)
        self.pending: int | None = None      # the FP instruction to stop at

    # What the block hook tests (the compiled one too): could FP trap now, and are we
    # running up to a known FP instruction (the hook held off)?
    @property
    def want(self) -> int:
        """The hardware ELs at which an FP access could trap now (bit 0: EL0, bit 1:
        EL1; vEL2 runs at EL1)."""
        return self._want

    @want.setter
    def want(self, v: int) -> None:
        if v != self._want:
            self._want = v
            if self._fast is not None:
                self._fast.state.fp_want = v

    @property
    def until(self) -> int | None:
        return self._until

    @until.setter
    def until(self, v: int | None) -> None:
        self._until = v
        if self._fast is not None:
            self._fast.state.fp_hold = int(v is not None)

    # --- where a trap goes ---------------------------------------------------------
    def _trap_els(self, cpacr_el1: int | None = None) -> int:
        """At which hardware ELs `route` could send an FP access somewhere now: a
        mask, bit 0 for EL0 and bit 1 for EL1 (so a kernel that traps only its user
        space's FP, CPACR_EL1.FPEN = 0b01 as Linux runs, costs its own blocks nothing)."""
        v = self.vcpu.vel2
        tfp = v is not None and v.get("CPTR_EL2") & CPTR_TFP
        if v is not None and v.active:
            return 0b10 if tfp else 0              # vEL2 runs at hardware EL1
        if tfp:
            return 0b11
        if cpacr_el1 is None:
            cpacr_el1 = self.cpu.cpr_read(*_KEY_CPACR)
        return _FPEN_TRAPS[(cpacr_el1 >> 20) & 3]

    def route(self) -> str | None:
        """"el1", "vel2" (forwarded from L1's EL1/EL0 code), "vel2-self", or None."""
        m = self.m
        v = m.vel2
        if v is not None and v.active:
            return "vel2-self" if v.get("CPTR_EL2") & CPTR_TFP else None
        fpen = (m.cpu.cpr_read(*_KEY_CPACR) >> 20) & 3
        if fpen in (0, 2) or (fpen == 1 and m.cpu.el() == 0):
            return "el1"
        if v is not None and v.get("CPTR_EL2") & CPTR_TFP:
            return "vel2"
        return None

    def sync(self, cpacr_el1: int | None = None) -> None:
        """After the regime may have changed (`cpacr_el1`: CPACR_EL1 when the caller
        knows it): where FP accesses could trap now."""
        self._space = None
        if self._fast is not None:
            self._fast.state.fp_space_known = 0
        self.want = self._trap_els(cpacr_el1)
        if self.want and not self._installing:
            # Installed once and kept: Unicorn compiles a block hook into each
            # translation block, so removing it retranslates every block that had it
            # (a world switch would cost a retranslation of all code), and adding it
            # does not reach blocks translated before; those are dropped, once,
            # between slices (from a hook, the slice ends after this instruction).
            self._installing = True
            self.cpu.between_slices(self._install)

    def _install(self) -> None:
        if self._fast is not None:
            self._hook = self._fast.hook_block(self._cfunc)
        else:
            self._hook = self.cpu.add_block_hook_raw(self._cfunc)
        self.cpu.uc.ctl_flush_tb()

    def code_changed(self, lo: int | None = None, hi: int | None = None) -> None:
        """The guest did instruction-cache maintenance: forget what the blocks that
        overlap [lo, hi) held (all blocks without a range).  A kernel patching its
        own code (jump labels) does it line by line, thousands of times while booting.
        The compiled hooks' caches are FastPath.code_changed's (SysregHooks._code_changed)."""
        if lo is None:
            self._blocks.clear()
            self._by_page.clear()
        else:
            for page in range(lo >> 12, ((hi - 1) >> 12) + 1):
                for key in self._by_page.pop(page, ()):
                    self._blocks.pop(key, None)

    # --- finding FP instructions -------------------------------------------------------
    def _fp_in(self, addr: int, size: int) -> tuple[int, ...]:
        """The FP instructions of the block at `addr` (cached).  Keyed by the
        translation table base too: two address spaces (processes, L1 and its VM) can
        hold different code at one VA."""
        space = self._space
        if space is None:
            cpu = self.cpu
            space = self._space = (cpu.cpr_read(*_KEY_TTBR0), cpu.cpr_read(*_KEY_TTBR1))
            if self._fast is not None:
                self._fast.set_fp_space(space)
        key = (addr, size, space[addr >> 55 & 1])
        hit = self._blocks.get(key)
        if hit is None:
            raw = self.cpu.read_virt(addr, size, 4) or b""
            hit = tuple(addr + i for i in range(0, len(raw) - 3, 4)
                        if is_fp(int.from_bytes(raw[i:i + 4], "little")))
            self._blocks[key] = hit
            for page in range(addr >> 12, ((addr + max(size, 1) - 1) >> 12) + 1):
                self._by_page.setdefault(page, []).append(key)
        return hit

    def _block_raw(self, _uch, addr: int, size: int, _data) -> None:
        """Before each block (a bare ctypes callback: keep it short)."""
        want = self._want
        if self._until is not None or not want or want != 0b11 and not want >> self.cpu.el() & 1:
            return
        try:
            space = self._space
            hit = self._blocks.get((addr, size, space[addr >> 55 & 1])) if space is not None else None
            if hit is None:
                hit = self._fp_in(addr, size)
            if not hit and self._fast is not None:     # the compiled hook answers it next time
                self._fast.note_fp_free(addr, size, self._space[addr >> 55 & 1])
            if hit and self.route() is not None:
                self.pending = hit[0]
                self.cpu.stop_before_current()        # the block's first instruction is not run
        except Exception as e:                  # never let the hook die inside Unicorn
            self.m.fail_in_hook(GuestError(f"internal error in the FP-trap block hook at {addr:#x}: {e!r}"))

    # --- the run loop's part -------------------------------------------------------------
    def budget(self, pc: int, budget: int) -> int:
        """After a stop at a block's start: run exactly up to the FP instruction."""
        if self.pending is not None and pc != self.pending:
            self.until, self.pending = self.pending, None
        if self.until is not None:
            return max(1, min(budget, (self.until - pc) // 4))
        return budget

    def after_slice(self) -> None:
        pc = self.cpu.pc
        if self.until is not None:
            target, self.until = self.until, None
            if pc == target:
                self.pending = target
            # otherwise something else happened on the way (an exception): go on
        if self.pending is not None and pc == self.pending:
            self.pending = None
            insn = self.cpu.read_insn(pc)
            if insn is not None and is_fp(insn):
                self.take(pc, insn)
            else:                               # the code changed under the cache
                self._blocks.clear()

    def take(self, pc: int, insn: int | None = None) -> bool:
        """Take the FP access trap of the instruction at `pc` if FP traps now."""
        where = self.route()
        if where is None:
            return False
        m = self.m
        esr = decode.esr(decode.EC_FP, decode.fp_iss())
        if where == "vel2":
            m.trap(ev.SYSREG, "FP/SIMD", pc=pc, insn=insn, forwarded=True, reason="CPTR_EL2.TFP set by L1")
            m.vel2.exit_to_vel2(esr, pc, why="FP access")
        elif where == "vel2-self":
            m.vel2.take_current(esr, pc)
        else:
            m.take_el1(esr, pc)
        return True


def is_fp(word: int) -> bool:
    """An FP/SIMD instruction the CPU model allocates (so an access trap, not UNDEF)."""
    k = decode.classify(word)
    return k.kind == "fp" and uc_implements(word, 1, fp=True)
