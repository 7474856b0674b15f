"""The Unicorn CPU: creation, the exact instruction counter, registers, PSTATE.

Unicorn runs guest code at EL1/EL0 and never takes an exception itself; the machine
(neve/core/entry.py) builds every exception entry.  This module wraps the few Unicorn
details the rest of neve must not know about:

* the instruction counter: `uc_emu_start(count=N)` counts executed instructions in
  `uc_struct.emu_counter`, which the API does not expose.  We locate that field once
  per process by calibration (run 1, 2, 5 instructions and look for the word that
  follows) and read it with ctypes; `icount()` is then exact inside every hook.
  With the compiled fast path the count is its own code hook's (`count_with`,
  neve_fast_count: the same count and stop, and one code hook fewer for Unicorn
  to walk on every instruction), and emu_start runs with count=0;
* PSTATE writes: Unicorn's raw PSTATE write neither swaps the banked stack pointer
  nor rebuilds QEMU's cached hflags; `set_pstate` does both;
* the hardware trap configuration L0 keeps on the CPU (SCR_EL3.{NS,HCE,RW} so HVC
  arrives as HVC, HCR_EL2.RW so EL1 is AArch64, HCR_EL2.TWI so WFI arrives as UDEF).
"""
from __future__ import annotations

import ctypes
from typing import Callable
import mmap

from unicorn import Uc, UcError, UC_ARCH_ARM64, UC_MODE_ARM, UC_HOOK_BLOCK, UC_HOOK_INSN, UC_HOOK_INTR
from unicorn import arm64_const as A
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH, UC_CTL_TLB_TYPE, UC_TLB_VIRTUAL, UC_CTL_TB_REMOVE_CACHE
from unicorn.unicorn_py3.unicorn import HOOK_MEM_ACCESS_CFUNC, uclib as _uclib
from unicorn.unicorn_py3.arch.arm64 import HOOK_INSN_SYS_CFUNC

from neve.arch import sysregs
from neve.arch.decode import sysreg_word

_KEY = {r.name: r.key for r in sysregs.REGISTERS}     # register name -> encoding

# Register access goes to Unicorn's C API directly: the binding's reg_read/reg_write
# look up the register's class on every call (~1.3 us each here), the C call costs
# ~0.4 us, and a world switch or a trapped access makes dozens of them.
_uc_reg_read = _uclib.uc_reg_read
_uc_reg_write = _uclib.uc_reg_write
_REG_PC, _REG_SP, _REG_PSTATE = A.UC_ARM64_REG_PC, A.UC_ARM64_REG_SP, A.UC_ARM64_REG_PSTATE
_HFLAGS_PSTATE = 0x1F | 1 << 21 | 1 << 9       # M, SS, D: what QEMU's cached hflags depend on
_REG_CP = A.UC_ARM64_REG_CP_REG


class _CpReg(ctypes.Structure):
    """uc_arm64_cp_reg: a system register by encoding, with its value."""
    _fields_ = (("crn", ctypes.c_uint32), ("crm", ctypes.c_uint32), ("op0", ctypes.c_uint32),
                ("op1", ctypes.c_uint32), ("op2", ctypes.c_uint32), ("val", ctypes.c_uint64))


_uclib.uc_vmem_read.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
_uclib.uc_vmem_read.restype = ctypes.c_int
_uc_vmem_read = _uclib.uc_vmem_read
# uc_ctl's codes (the binding's Uc.ctl encoding: direction, argument count, control)
# for TLB flushes and TLB-mode changes, called without the binding's wrappers.
_uc_ctl = _uclib.uc_ctl
_CTL_TLB_FLUSH = UC_CTL_IO_WRITE << 30 | UC_CTL_TLB_FLUSH
_CTL_TLB_TYPE = UC_CTL_IO_WRITE << 30 | 1 << 26 | UC_CTL_TLB_TYPE
_CTL_TB_REMOVE_CACHE = UC_CTL_IO_WRITE << 30 | 2 << 26 | UC_CTL_TB_REMOVE_CACHE
_uclib.uc_vmem_translate.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p]
_uclib.uc_vmem_translate.restype = ctypes.c_int

X_REGS = [getattr(A, f"UC_ARM64_REG_X{i}") for i in range(29)] + [A.UC_ARM64_REG_X29, A.UC_ARM64_REG_X30]

# Register programs: a world switch's moves between the CPU and a storage array as
# data, a list of (op, argument, slot) that `CPU.reg_ops` runs here and the compiled
# fast path runs in one call (FastPath.reg_program, neve_fast_reg_ops).  The slot
# holds the value an op writes, or receives the value it reads.
OP_CP_SAVE = 0      # argument: the encoding (op0, op1, CRn, CRm, op2)
OP_CP_LOAD = 1
OP_REG_SAVE = 2     # argument: Unicorn's register id
OP_REG_LOAD = 3
OP_SP_SAVE = 4      # argument: n of SP_ELn (CPU.sp_el / set_sp_el)
OP_SP_LOAD = 5
OP_PSTATE = 6       # CPU.set_pstate
OP_TLB_FLUSH = 7


_SCTLR_EL1 = (3, 0, 1, 0, 0)

_COUNTER_OFFSET: int | None = None
_CALIB_CODE = bytes.fromhex("1f2003d5" * 8)  # nops


def _calibrate() -> int:
    """Find the byte offset of uc_struct.emu_counter (see module docstring)."""
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map(0x1000, 0x1000)
    uc.mem_write(0x1000, _CALIB_CODE)
    base = ctypes.cast(uc._uch, ctypes.c_void_p).value
    words = 1024
    snaps = []
    for n in (1, 2, 5):
        uc.emu_start(0x1000, 0, count=n)
        snaps.append((ctypes.c_uint64 * words).from_address(base)[:])
    # emu_count (the saved limit) holds n; emu_counter, the word before it, n + 1.
    for i in range(1, words):
        if [s[i] for s in snaps] == [1, 2, 5] and [s[i - 1] for s in snaps] == [2, 3, 6]:
            return (i - 1) * 8
    raise RuntimeError("cannot locate Unicorn's instruction counter (unexpected Unicorn build)")


_SKIPS: dict[tuple, bool] = {}
_probe_uc: Uc | None = None
_PROBE_BASE = 0x1000


def _probe_hook(uc, reg, cp, _):
    return 1


def uc_translator_skips(key: tuple, write: bool, el: int) -> bool:
    """Probe, once per (encoding, direction, EL), what Unicorn's translator does when
    the MRS/MSR/SYS hook returns 1: skip the instruction (True), or end the block
    with the access still pending (False, e.g. *_EL2 registers at EL1, or encodings
    this Unicorn build does not implement, like the GICv3 ICC_* registers)."""
    k = (key, write, el)
    v = _SKIPS.get(k)
    if v is not None:
        return v
    global _probe_uc
    if _probe_uc is None:
        _probe_uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        _probe_uc.mem_map(_PROBE_BASE, 0x1000)
        _probe_uc.cpr_write(3, 4, 1, 1, 0, 1 << 31)   # HCR_EL2.RW
        for ins in (A.UC_ARM64_INS_MRS, A.UC_ARM64_INS_MSR, A.UC_ARM64_INS_SYS, A.UC_ARM64_INS_SYSL):
            _probe_uc.hook_add(UC_HOOK_INSN, _probe_hook, None, 1, 0, ins)
    uc = _probe_uc
    word = sysreg_word(*key, 31, not write)
    uc.mem_write(_PROBE_BASE, word.to_bytes(4, "little") + bytes.fromhex("1f2003d5"))
    uc.ctl_remove_cache(_PROBE_BASE, _PROBE_BASE + 8)
    uc.reg_write(A.UC_ARM64_REG_PSTATE, 0x3C5 if el else 0x3C0)
    uc.cpr_write(3, 3, 13, 0, 3, 0)                    # rebuild cached EL flags
    try:
        uc.emu_start(_PROBE_BASE, 0, count=1)
        v = uc.reg_read(A.UC_ARM64_REG_PC) != _PROBE_BASE
    except UcError:
        v = False
    _SKIPS[k] = v
    return v


_IMPLEMENTED: dict[tuple, bool] = {}
_impl_uc: Uc | None = None
_impl_ints: list[int] = []


def _udef_hook(uc, intno, ints):
    ints.append(intno)
    uc.emu_stop()


def uc_implements(word: int, el: int, fp: bool = False) -> bool:
    """Does the CPU model (Unicorn's Cortex-A72) execute this instruction word at
    `el` (1 or 2) without an UNDEFINED exception?  Probed once per (word, EL) in a
    Unicorn of its own without MRS/MSR hooks, which, unlike neve's CPU, can run at
    EL2.  It tells an encoding the model does not have (UNDEFINED, as on QEMU's
    cortex-a72) from one neve has not emulated.  With `fp`, the probe runs with
    FP/SIMD enabled (CPACR_EL1.FPEN = 0b11): an FP instruction that still UNDEFs is
    unallocated, not an FP access trap.  For MRS/MSR/SYS the register transferred
    (Rt) does not matter and is replaced by XZR."""
    global _impl_uc
    sysreg = word & 0xFFC0_0000 == 0xD500_0000
    k = ((word & ~0x1F) | 31 if sysreg else word, el, fp)
    v = _IMPLEMENTED.get(k)
    if v is not None:
        return v
    uc = _impl_uc
    if uc is None:
        uc = _impl_uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        uc.mem_map(0, _PROBE_BASE + 0x1000)            # the code, and page 0 for Xt = XZR
        uc.hook_add(UC_HOOK_INTR, _udef_hook, _impl_ints)
    # What an earlier probe (an MSR of zero) may have changed, set again.
    uc.cpr_write(3, 4, 1, 1, 0, 1 << 31)               # HCR_EL2.RW
    uc.cpr_write(3, 0, 1, 0, 2, 3 << 20 if fp else 0)  # CPACR_EL1.FPEN
    uc.cpr_write(3, 4, 1, 1, 2, 0)                     # CPTR_EL2
    uc.mem_write(_PROBE_BASE, k[0].to_bytes(4, "little") + bytes.fromhex("1f2003d5"))
    uc.ctl_remove_cache(_PROBE_BASE, _PROBE_BASE + 8)
    uc.reg_write(A.UC_ARM64_REG_PSTATE, 0x3C9 if el == 2 else 0x3C5)
    uc.cpr_write(3, 3, 13, 0, 3, 0)                    # rebuild cached EL flags
    _impl_ints.clear()
    try:
        uc.emu_start(_PROBE_BASE, 0, count=1)
    except UcError:
        pass                                            # executed, and faulted on memory
    v = 1 not in _impl_ints                             # EXCP_UDEF
    _IMPLEMENTED[k] = v
    return v


# What an MRS/MSR/SYS hook returns to Unicorn: EXECUTE lets Unicorn execute the
# instruction itself; SKIP means the hook has done it (or moved PC to an exception
# vector: `redirected`) and Unicorn does not.  A handler in a chain returns None for
# "not mine: ask the next one".
EXECUTE, SKIP = 0, 1



def alloc_ram(size: int) -> mmap.mmap:
    """Zeroed host memory for guest RAM, to map into one or more CPUs."""
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


class CPU:
    def __init__(self) -> None:
        global _COUNTER_OFFSET
        if _COUNTER_OFFSET is None:
            _COUNTER_OFFSET = _calibrate()
        self.uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        self._uch = ctypes.cast(self.uc._uch, ctypes.c_void_p).value
        self._counter = ctypes.c_uint64.from_address(self._uch + _COUNTER_OFFSET)
        self._h = self.uc._uch                # the uc_engine handle (ctypes.c_void_p)
        self._val = ctypes.c_uint64()         # the C API's in/out register value
        self._ref = ctypes.byref(self._val)
        self._insn = ctypes.c_uint32()        # read_insn's buffer
        self._insn_ref = ctypes.byref(self._insn)
        self._cp = _CpReg()                   # ... and for system registers (UC_ARM64_REG_CP_REG)
        self._cp_ref = ctypes.byref(self._cp)
        # Instructions executed by completed emu_start calls (a C word: the compiled
        # fast path reads the counter as base + Unicorn's own count, neve/core/fastpath.py).
        self.base = ctypes.c_int64(0)     # may be negative for a moment (end_slice_after_current)
        # With several vCPUs, `base` follows the machine's clock (every vCPU's
        # instructions: Machine._switch_to moves it on); `skew` is how far it was moved
        # for instructions of other vCPUs, so own_icount() counts this CPU's alone.
        self.skew = 0
        self.slice_count = 0      # the count limit of the running emu_start
        self._limit: ctypes.c_uint64 | None = None    # count_with's limit word
        # Non-secure, EL2 present with HVC enabled, lower levels AArch64.
        self.cpr_write(3, 6, 1, 1, 0, (1 << 0) | (1 << 8) | (1 << 10))
        # HCR_EL2: RW (EL1 is AArch64), TWI (WFI arrives as UDEF so L0 sees it).
        self.cpr_write(3, 4, 1, 1, 0, (1 << 31) | (1 << 13))
        # CPACR_EL1 resets to 0 (FP/SIMD trapped at EL1 and EL0) as on QEMU; Unicorn
        # resets it with FP enabled.
        self.cpr_write(3, 0, 1, 0, 2, 0)
        self._buffers: list = []
        self._raw_hooks: list = []
        self._running = False                 # inside emu_start (a hook is running)
        self._between: list = []              # between_slices actions waiting for its end
        self._stopped_at: int | None = None
        self._redirect_pc: int | None = None
        self.tlb_virtual = False              # UC_TLB_VIRTUAL (set_tlb_mode)

    # --- memory --------------------------------------------------------------------
    def map_ram(self, base: int, size: int) -> mmap.mmap:
        """Map fresh zeroed RAM at `base`; returns its host buffer."""
        buf = alloc_ram(size)
        self.map_ram_buffer(base, buf)
        return buf

    def map_ram_buffer(self, base: int, buf: mmap.mmap) -> None:
        """Map the host buffer `buf` (alloc_ram) at `base`: vCPUs share the board's RAM."""
        ptr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        self.uc.mem_map_ptr(base, len(buf), 7, ptr)
        self._buffers.append(buf)

    # --- counting ------------------------------------------------------------------
    @property
    def base_icount(self) -> int:
        return self.base.value

    @base_icount.setter
    def base_icount(self, v: int) -> None:
        self.base.value = v

    def handle(self):
        """The uc_engine handle, for C code that calls Unicorn itself."""
        return self._h

    def counter_address(self) -> int:
        """Where Unicorn counts the running emu_start's instructions."""
        return ctypes.addressof(self._counter)

    def count_with(self, counter: ctypes.c_uint64, limit: ctypes.c_uint64) -> None:
        """Count instructions with a code hook of the caller's (the compiled fast path's
        neve_fast_count, which counts in `counter` and stops past `limit` exactly as
        Unicorn's counter does), not with emu_start's count."""
        self._counter, self._limit = counter, limit

    def icount(self) -> int:
        """Instructions executed so far, counting the one executing now (inside a hook)."""
        return self.base.value + self._counter.value

    def own_icount(self) -> int:
        """Instructions this CPU executed (icount() less the other vCPUs'): what its
        PMU counts."""
        return self.base.value + self._counter.value - self.skew

    def slice_end(self) -> int:
        """The instruction count at which the running emu_start ends at the latest."""
        return self.base_icount + self.slice_count

    def run(self, pc: int, count: int, timeout_us: int = 0) -> int:
        """emu_start for at most `count` instructions; returns the number executed.
        Raises UcError after the executed count has been accounted."""
        self._counter.value = 0
        self.slice_count = count
        self._stopped_at = None
        self._redirect_pc = None
        self._running = True
        try:
            # Unicorn stops when PC reaches `until`.  0 is where no code usually is, and
            # any other address costs a TLB fill for its page at each emu_start (under
            # the nested modes' UC_TLB_VIRTUAL, a fault of the guest's tables).  Code at
            # 0 (flash bank 0, --bios) then stops there once, and the next slice starts
            # at 0 with `until` 1, an address no instruction has, in the same page.
            until = 1 if pc == 0 else 0
            if self._limit is None:
                self.uc.emu_start(pc, until, timeout=timeout_us, count=count)
            else:
                self._limit.value = count
                self.uc.emu_start(pc, until, timeout=timeout_us, count=0)
        finally:
            self._running = False
            c = self._counter.value
            done = count if c > count else c
            if self._stopped_at is not None:
                done = min(done, self._stopped_at)
                self._stopped_at = None
            if self._redirect_pc is not None:
                # The block went on to the next instruction's counting hook, which
                # stopped it there and left PC on that instruction: the exception
                # entry's PC is the one that stands.
                self.pc = self._redirect_pc
                self._redirect_pc = None
            self.base_icount += done
            self._counter.value = 0
            later, self._between = self._between, []
            for fn in later:
                fn()
        return done

    def in_emulation(self) -> bool:
        """Inside emu_start (Python runs only in one of Unicorn's callbacks then)."""
        return self._running

    def between_slices(self, fn: Callable[[], None]) -> None:
        """Run `fn` (a change to Unicorn's hooks or translated code: adding or
        removing a hook, dropping translations) where it is safe: now outside
        emulation; from a hook, once emu_start has returned, the slice ending right
        after the current instruction.  Dropping translated code from inside Unicorn
        pulls the running translation block from under it (a Debian kernel's boot
        alternatives then took an instruction abort at the next instruction)."""
        if not self._running:
            fn()
            return
        self._between.append(fn)
        self.end_slice_after_current()

    # --- finishing an emulated MRS/MSR/SYS -----------------------------------------
    # Unicorn calls the MRS/MSR/SYS hook before its own access check.  When the hook
    # returns 1 for an encoding Unicorn itself can access at the current EL, Unicorn
    # skips the instruction and carries on in the same translation block; for one it
    # cannot access it ends the block with an UNDEF and the hook must move PC on
    # itself.  Writing PC in the first case makes Unicorn leave the block only after
    # the *next* instruction's counting hook ran, which would count that instruction
    # twice; so the machine finishes every emulated access through these methods.

    def uc_accessible(self, key: tuple, write: bool, el: int | None = None) -> bool:
        """Does Unicorn's translator treat this MRS/MSR/SYS as accessible at the
        current EL (so that a hook returning 1 skips it by itself)?  `el`: the
        hardware EL when the caller knows it (1 while vEL2 runs)."""
        return uc_translator_skips(key, write, self.el() if el is None else el)

    def skip_hooked(self, pc: int, key: tuple, write: bool, el: int | None = None) -> int:
        """The hooked instruction at `pc` was emulated; continue after it."""
        if not self.uc_accessible(key, write, el):
            self.pc = pc + 4
        return SKIP

    def redirected(self, accessible: bool) -> int:
        """The hook moved PC elsewhere (an exception entry).  `accessible` is
        uc_accessible() of the instruction, computed before the redirection.

        For an encoding Unicorn treats as accessible, returning 1 skips it and the
        translation block carries on: the PC written by the hook is not seen, and
        the block stops at the next instruction's counting hook (emu_stop), with PC
        on that instruction.  The exception's PC is put back once emu_start returns
        (`run`), and that next instruction, counted but not executed, is not counted."""
        if accessible:
            self._stopped_at = self._counter.value
            self._redirect_pc = self.pc
            self.uc.emu_stop()
        return SKIP

    # --- registers -----------------------------------------------------------------
    def reg(self, regid: int) -> int:
        """A 64-bit register by Unicorn id (arm64_const.UC_ARM64_REG_*)."""
        err = _uc_reg_read(self._h, regid, self._ref)
        if err:
            raise UcError(err)
        return self._val.value

    def set_reg(self, regid: int, v: int) -> None:
        self._val.value = v & 0xFFFF_FFFF_FFFF_FFFF
        err = _uc_reg_write(self._h, regid, self._ref)
        if err:
            raise UcError(err)

    def x(self, n: int) -> int:
        if n == 31:
            return 0
        return self.reg(X_REGS[n])

    def base_reg(self, n: int) -> int:
        """Register n as a load/store base: SP for 31 (decode.LdSt.address's read_reg)."""
        return self.sp if n == 31 else self.x(n)

    def set_x(self, n: int, v: int) -> None:
        if n != 31:
            self.set_reg(X_REGS[n], v)

    @property
    def pc(self) -> int:
        return self.reg(_REG_PC)

    @pc.setter
    def pc(self, v: int) -> None:
        self.set_reg(_REG_PC, v)

    @property
    def sp(self) -> int:
        return self.reg(_REG_SP)

    @sp.setter
    def sp(self, v: int) -> None:
        self.set_reg(_REG_SP, v)

    def pstate(self) -> int:
        return self.reg(_REG_PSTATE)

    def el(self) -> int:
        return (self.pstate() >> 2) & 3

    def cpr_read(self, op0: int, op1: int, crn: int, crm: int, op2: int) -> int:
        cp = self._cp
        cp.op0, cp.op1, cp.crn, cp.crm, cp.op2 = op0, op1, crn, crm, op2
        cp.val = 0                  # what an encoding Unicorn does not know reads as
        err = _uc_reg_read(self._h, _REG_CP, self._cp_ref)
        if err:
            raise UcError(err)
        return cp.val

    def cpr_write(self, op0: int, op1: int, crn: int, crm: int, op2: int, value: int) -> None:
        cp = self._cp
        cp.op0, cp.op1, cp.crn, cp.crm, cp.op2 = op0, op1, crn, crm, op2
        cp.val = value & 0xFFFF_FFFF_FFFF_FFFF
        err = _uc_reg_write(self._h, _REG_CP, self._cp_ref)
        if err:
            raise UcError(err)

    def read_sysreg(self, name: str) -> int:
        """The hardware (EL1/EL0) register `name` of the register table."""
        return self.cpr_read(*_KEY[name])

    def write_sysreg(self, name: str, value: int) -> None:
        self.cpr_write(*_KEY[name], value)

    def sp_el(self, n: int) -> int:
        """Banked SP_ELn (n = 0 or 1), whichever is currently live."""
        cur = self.pstate()
        if self._sp_index(cur) == n:
            return self.sp
        return self.reg(A.UC_ARM64_REG_SP_EL0 if n == 0 else A.UC_ARM64_REG_SP_EL1)

    def set_sp_el(self, n: int, v: int) -> None:
        cur = self.pstate()
        if self._sp_index(cur) == n:
            self.sp = v
        else:
            self.set_reg(A.UC_ARM64_REG_SP_EL0 if n == 0 else A.UC_ARM64_REG_SP_EL1, v)

    @staticmethod
    def _sp_index(pstate: int) -> int:
        el = (pstate >> 2) & 3
        return el if (pstate & 1) else 0

    def set_pstate(self, new: int) -> None:
        """Write PSTATE as an exception entry or return would: bank the current SP,
        load the new level's SP, and make Unicorn re-derive its cached flags."""
        old = self.pstate()
        oi, ni = self._sp_index(old), self._sp_index(new)
        if oi != ni:
            cur = self.sp
            other = self.reg(A.UC_ARM64_REG_SP_EL0 if ni == 0 else A.UC_ARM64_REG_SP_EL1)
            self.set_reg(A.UC_ARM64_REG_SP_EL0 if oi == 0 else A.UC_ARM64_REG_SP_EL1, cur)
            self.sp = other
        self.set_reg(_REG_PSTATE, new & 0xFFFFFFFF)
        if (old ^ new) & _HFLAGS_PSTATE:
            # Any CP_REG write rebuilds the cached hflags (EL, SP selection, and the
            # software-step state, which PSTATE.SS and PSTATE.D take part in).
            v = self.cpr_read(3, 3, 13, 0, 3)    # TPIDRRO_EL0
            self.cpr_write(3, 3, 13, 0, 3, v)

    def flush_tlb(self) -> None:
        err = _uc_ctl(self._h, _CTL_TLB_FLUSH)
        if err:
            raise UcError(err)

    def set_tlb_mode(self, mode: int) -> None:
        """UC_TLB_CPU (Unicorn walks the guest's tables) or UC_TLB_VIRTUAL (the TLB-fill hook does)."""
        err = _uc_ctl(self._h, _CTL_TLB_TYPE, ctypes.c_uint(mode))
        if err:
            raise UcError(err)
        self.tlb_virtual = mode == UC_TLB_VIRTUAL

    def drop_code(self, va: int, end: int) -> None:
        """Drop Unicorn's translations of the code at [va, end) (uc_ctl_remove_cache,
        by a VA Unicorn can fetch from)."""
        err = _uc_ctl(self._h, _CTL_TB_REMOVE_CACHE, ctypes.c_uint64(va), ctypes.c_uint64(end))
        if err:
            raise UcError(err)

    def drop_code_phys(self, pa: int, end: int) -> bool:
        """Drop Unicorn's translations of the code at physical [pa, end) (one page at
        most), whatever virtual address it runs at; between slices only.  Unicorn
        drops translations by a virtual address it can fetch from (uc_ctl_remove_cache
        finds the page with an instruction-fetch translation), which a page written
        through another mapping (Linux's linear map) has not: with the EL1&0 stage 1
        off for the moment, the physical address is that address.  SCTLR_EL1 is
        written raw (no TLB flush, no rebuilt flags: M is not among them), and Unicorn's
        TLB is flushed before (no cached translation of `pa` as a virtual address) and
        after (not the identity one).  False under UC_TLB_VIRTUAL, whose fills are the
        TLB-fill hook's: the caller drops everything instead."""
        if self.tlb_virtual:
            return False
        sctlr = self.cpr_read(*_SCTLR_EL1)
        self.cpr_write(*_SCTLR_EL1, sctlr & ~1)
        try:
            self.flush_tlb()
            self.drop_code(pa, end)
        finally:
            self.cpr_write(*_SCTLR_EL1, sctlr)
            self.flush_tlb()
        return True

    def reg_ops(self, ops: list[tuple[int, object, int]], store) -> None:
        """Run a register program (the OP_* list above) against `store`."""
        for op, arg, slot in ops:
            if op == OP_CP_SAVE:
                store[slot] = self.cpr_read(*arg)
            elif op == OP_CP_LOAD:
                self.cpr_write(*arg, store[slot])
            elif op == OP_REG_SAVE:
                store[slot] = self.reg(arg)
            elif op == OP_REG_LOAD:
                self.set_reg(arg, store[slot])
            elif op == OP_SP_SAVE:
                store[slot] = self.sp_el(arg)
            elif op == OP_SP_LOAD:
                self.set_sp_el(arg, store[slot])
            elif op == OP_PSTATE:
                self.set_pstate(store[slot])
            elif op == OP_TLB_FLUSH:
                self.flush_tlb()
            else:
                raise ValueError(f"register program: unknown op {op}")

    def read_virt(self, va: int, size: int, prot: int = 1) -> bytes | None:
        """Read through the current translation regime (prot 1 read, 4 exec); None
        when the address does not translate or is not backed."""
        buf = ctypes.create_string_buffer(size)
        err = _uclib.uc_vmem_read(self.uc._uch, ctypes.c_uint64(va), ctypes.c_int(prot), buf, ctypes.c_size_t(size))
        return None if err else buf.raw

    def translate(self, va: int, prot: int = 1) -> int | None:
        """The physical address of `va` for a read (prot 1) or an instruction fetch (4)
        in the current translation regime; None when it does not translate."""
        pa = ctypes.c_uint64()
        err = _uclib.uc_vmem_translate(self._h, ctypes.c_uint64(va), ctypes.c_int(prot), ctypes.byref(pa))
        return None if err else pa.value

    def read_insn(self, va: int) -> int | None:
        """The instruction word at `va` (read as an instruction fetch), or None."""
        err = _uc_vmem_read(self._h, va, 4, self._insn_ref, 4)
        return None if err else self._insn.value

    def stop_before_current(self) -> None:
        """From a hook: stop emulation with the current instruction counted as
        attempted but not executed (neve completes or faults it after emu_start)."""
        self._stopped_at = self._counter.value
        self.uc.emu_stop()

    def add_sysreg_hook(self, insn: int, fn) -> int:
        """A hook on MRS, MSR or SYS (`insn`: UC_ARM64_INS_MRS/MSR/SYS) as a bare ctypes
        callback: `fn(reg, cp) -> int` (EXECUTE or SKIP), `cp` the instruction's
        encoding and value (op0, op1, crn, crm, op2, val), valid during the call only.
        The binding's own registration wraps every call in three Python layers and
        copies `cp` into a tuple.  An exception escaping `fn` stops the CPU and is
        raised by emu_start, as the binding does."""
        return self._add_raw_hook(UC_HOOK_INSN, self.sysreg_cfunc(fn), ctypes.c_int(insn))

    def sysreg_cfunc(self, fn):
        """`fn` as the bare ctypes callback add_sysreg_hook registers (also what the
        compiled fast path calls, neve/core/fastpath.py)."""
        def raw(_handle, reg, pcp, _key):
            try:
                return fn(reg, _CpReg.from_address(pcp))
            except BaseException as e:
                self._hook_failed(e)
                return SKIP

        return HOOK_INSN_SYS_CFUNC(raw)

    def add_mem_hook(self, htype: int, fn) -> int:
        """A memory-access hook (UC_HOOK_MEM_READ/WRITE...) as a bare ctypes callback:
        `fn(access, address, size, value)`.  As add_sysreg_hook: no binding layers, and
        an exception escaping `fn` stops the CPU and is raised by emu_start."""
        return self._add_raw_hook(htype, self.mem_cfunc(fn))

    def mem_cfunc(self, fn):
        """`fn` as the bare ctypes callback add_mem_hook registers."""
        def raw(_handle, access, address, size, value, _data):
            try:
                fn(access, address, size, value)
            except BaseException as e:
                self._hook_failed(e)

        return HOOK_MEM_ACCESS_CFUNC(raw)

    def add_c_hook(self, htype: int, cfn, user_data: int, *args, begin: int = 1, end: int = 0) -> int:
        """A hook whose callback is a C function (`cfn`, a function of a ctypes
        library) called with `user_data` (an address), for addresses [begin, end]
        (begin > end: all); removable with `uc.hook_del`."""
        h = ctypes.c_size_t()
        err = _uclib.uc_hook_add(self._h, ctypes.byref(h), ctypes.c_int(htype), ctypes.cast(cfn, ctypes.c_void_p),
                                 ctypes.c_void_p(user_data), ctypes.c_uint64(begin), ctypes.c_uint64(end), *args)
        if err:
            raise UcError(err)
        self.uc._callbacks[h.value] = cfn       # as the binding keeps its own (hook_del pops it)
        return h.value

    def _add_raw_hook(self, htype: int, cfunc, *args) -> int:
        self._raw_hooks.append(cfunc)           # Unicorn holds only the C pointer
        return self.uc._Uc__do_hook_add(htype, cfunc, 1, 0, *args)

    def _hook_failed(self, e: BaseException) -> None:
        """An exception escaped a raw hook: stop, and let emu_start raise it (the
        first one), as the binding's own hooks do."""
        if self.uc._hook_exception is None:
            self.uc._hook_exception = e
        self.uc.emu_stop()

    def add_block_hook_raw(self, cfunc) -> int:
        """A block hook registered as a bare ctypes callback (unicorn==2.1.4's own
        registration), without the binding's per-call wrappers, which cost as much as
        a cheap hook itself.  Remove it with `uc.hook_del`."""
        return self.add_hook_raw(UC_HOOK_BLOCK, cfunc)

    def add_hook_raw(self, htype: int, cfunc) -> int:
        """A hook of type `htype` (all addresses) whose callback is a bare ctypes
        callback of the binding's type for it (HOOK_INTR_CFUNC, HOOK_TLB_FILL_CFUNC...):
        nothing may raise through it."""
        return self.uc._Uc__do_hook_add(htype, cfunc, 1, 0)

    # --- for the debugger and the GDB stub -------------------------------------------
    def executed_in_slice(self) -> int:
        """Instructions Unicorn has counted in the running emu_start, the one executing
        now included (0 outside emulation).  More than `slice_count` when the count
        limit is reached: Unicorn stops before the current instruction anyway."""
        return self._counter.value

    def end_slice_after_current(self) -> None:
        """From a hook: end the running emu_start once the current instruction is
        complete, by setting the slice's counter to its limit, so Unicorn's own count
        check stops at the next instruction boundary as at the end of a slice.  The
        base count is lowered by the same amount so `icount()` stays exact, also for
        events published later in this instruction.  Outside emulation, or when the
        slice ends here anyway, nothing changes."""
        c, n = self._counter.value, self.slice_count
        if 0 < c < n:
            self.base_icount -= n - c
            self._counter.value = n

    @property
    def engine_handle(self):
        """Unicorn's uc_engine handle, for C API calls its Python binding does not
        wrap (uc_vmem_translate, as `read_virt` uses uc_vmem_read)."""
        return self.uc._uch
