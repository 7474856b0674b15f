"""Alignment faults that Unicorn does not raise.

The architecture requires an aligned address for every access to Device memory, and
for load/store exclusive and load-acquire/store-release whatever the memory type.
With the MMU off (SCTLR_EL1.M = 0 for the EL1&0 regime without HCR_EL2.DC, or
SCTLR_EL2.M = 0 at virtual EL2) every data access is to Device memory, so an
unaligned LDR takes an alignment fault (DFSC 0x21) before anything is accessed.
Unicorn's AArch64 has no Device-memory alignment check (and ignores SCTLR.A), so:

* while the running regime has its MMU off, or its SCTLR_ELx.A set (every unaligned
  access to Normal memory then faults too), a Unicorn memory hook (about 0.4 us per
  access) checks every data access; the first unaligned one of an instruction
  records the registers and, for stores, the bytes the instruction is about to
  overwrite, and stops the CPU after that instruction (a memory hook cannot cancel
  the access; MMIO callbacks see the pending fault and do nothing);
* `deliver` then puts memory and registers back and takes the alignment fault, as
  if the access had never been made;
* in the abort paths (faults.py, stage2.py): the alignment fault of an exclusive or
  acquire/release, or of any access under SCTLR.A, comes first (QEMU 10 orders it
  before the translation of either page of a page-crossing access); then, in the nested VM, stage-1 faults, the alignment
  fault of Device memory, and stage-2 faults and external aborts last (Arm ARM
  R_XCHFJ).  With the MMU off in a single-stage regime (the VM, vEL2), the Device
  alignment fault also comes before the address-size check, as QEMU 10 orders them
  (its hflags make every access alignment-checked there).  QEMU 10 does not check
  Device alignment at all when the nested VM's stage 1 is off under stage 2; neve
  does, as the architecture requires (Device-nGnRnE: Arm ARM D8.2.10).

With the MMU on, Device mappings (MAIR) are not alignment-checked: a known limit.

The same hook serves the watchpoints (neve/devices/debug.py): while one is armed it
is installed, an access overlapping an armed range asks `watcher`, and a match is
collected and undone the same way, then taken as a Watchpoint exception instead.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from unicorn import UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UC_MEM_WRITE
from unicorn import arm64_const as A

from neve.arch import decode, mmu, sysregs
from neve.arch.platform import RAM_BASE
from neve.errors import Unsupported

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine

FSC_ALIGNMENT = 0x21
_HCR_DC = 1 << 12
_SCTLR_A = 1 << 1
_KEY_SCTLR_EL1 = sysregs.BY_NAME["SCTLR_EL1"].key
_X = [getattr(A, f"UC_ARM64_REG_X{i}") for i in range(29)] + [A.UC_ARM64_REG_X29, A.UC_ARM64_REG_X30]
_Q = [getattr(A, f"UC_ARM64_REG_Q{i}") for i in range(32)]


def device_regime(m: Machine) -> bool:
    """Are the running code's data accesses to Device memory (its MMU is off)?"""
    v = m.vel2
    if v is not None and v.active:
        return not v.get("SCTLR_EL2") & 1
    if m.cpu.cpr_read(*_KEY_SCTLR_EL1) & 1:
        return False
    return not (v is not None and v.get("HCR_EL2") & _HCR_DC)


def strict_regime(m: Machine) -> bool:
    """Does the running regime check the alignment of every access (SCTLR_ELx.A)?"""
    v = m.vel2
    if v is not None and v.active:
        return bool(v.get("SCTLR_EL2") & _SCTLR_A)
    return bool(m.cpu.cpr_read(*_KEY_SCTLR_EL1) & _SCTLR_A)


def checked_regime(m: Machine, sctlr_el1: int | None = None) -> bool:
    """Must the memory hook check the alignment of every access (MMU off, or SCTLR.A)?
    (device_regime or strict_regime, with one read of the SCTLR; `sctlr_el1`: its
    value when the caller knows it.)"""
    v = m.vel2
    if v is not None and v.active:
        sctlr = v.get("SCTLR_EL2")
        return not sctlr & 1 or bool(sctlr & _SCTLR_A)
    sctlr = m.cpu.cpr_read(*_KEY_SCTLR_EL1) if sctlr_el1 is None else sctlr_el1
    if sctlr & _SCTLR_A:
        return True
    if sctlr & 1:
        return False
    return not (v is not None and v.get("HCR_EL2") & _HCR_DC)


def must_align(m: Machine, ld: decode.LdSt) -> bool:
    """Does this access fault when unaligned?  Exclusives and acquire/release always;
    every access when the regime's MMU is off or its SCTLR.A is set."""
    return ld.exclusive or ld.acqrel or ld.rmw or checked_regime(m)


def alignment(ld: decode.LdSt) -> int:
    """The alignment an access needs: an exclusive pair or CASP, its whole size;
    LD1-4/ST1-4 of multiple structures, their element size; anything else, the size
    of one register's access."""
    if (ld.exclusive or ld.rmw) and ld.nregs == 2:
        return ld.size * ld.nregs
    return ld.elem or ld.size


def misaligned(m: Machine, ld: decode.LdSt | None, va: int) -> bool:
    """Unaligned where it must not be: once the translation is known (Device memory)."""
    return ld is not None and not ld.cm and va % alignment(ld) != 0 and must_align(m, ld)


def misaligned_first(ld: decode.LdSt | None, va: int, m: Machine | None = None) -> bool:
    """Unaligned where the instruction itself (exclusives, acquire/release) or, given
    `m`, the running regime's SCTLR.A requires alignment: this alignment fault comes
    before any translation fault (as QEMU 10 orders them)."""
    return (ld is not None and not ld.cm and va % alignment(ld) != 0
            and (ld.exclusive or ld.acqrel or ld.rmw or (m is not None and strict_regime(m))))


def fault(m: Machine, ld: decode.LdSt, va: int, pc: int) -> None:
    """Take the alignment fault of `ld` at `va`, at the level the running code's
    synchronous exceptions go to."""
    ec = decode.EC_DABT_CUR if m.cpu.el() != 0 else decode.EC_DABT_LOW
    iss = decode.data_abort_iss(ld, fsc=FSC_ALIGNMENT, with_syndrome=False)
    m.deliver_sync(decode.esr(ec, iss), pc, va)


class DeviceAlignment:
    def __init__(self, m: Machine) -> None:
        self.m = m
        self.vcpu = m.vcpu                # the vCPU it is built for (its vel2 comes later)
        self.cpu = m.cpu
        self._hook = None
        self._fast = self.vcpu.fast          # the compiled memory hook in front, if built
        self._pending: dict | None = None
        self._sizes: dict[int, decode.LdSt | None] = {}
        self._cfunc = self.cpu.mem_cfunc(self._access) if self._fast is not None else None
        self._watch: list[tuple[int, int]] = []        # armed watchpoints' [lo, hi)
        self._checking = False      # the regime is alignment-checked (sync)
        self.watcher = None         # (va, size, write) -> (FAR, the exception's taker) or None

    @property
    def pending(self) -> dict | None:
        """The alignment fault being collected (the hook then sees every access)."""
        return self._pending

    @pending.setter
    def pending(self, p: dict | None) -> None:
        self._pending = p
        if self._fast is not None:
            self._fast.state.align_pending = int(p is not None)

    def sync(self, sctlr_el1: int | None = None) -> None:
        """After the regime may have changed: check accesses while the MMU is off or
        SCTLR.A is set."""
        self._checking = checked_regime(self.m, sctlr_el1)
        want = self._checking or bool(self._watch)
        uc = self.cpu.uc
        if want and self._hook is None:
            if self._fast is not None:
                self._hook = self._fast.hook_mem(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, self._cfunc)
            else:
                self._hook = self.cpu.add_mem_hook(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, self._access)
        elif not want and self._hook is not None:
            uc.hook_del(self._hook)
            self._hook = None

    def set_watch(self, ranges: list[tuple[int, int]], watcher) -> None:
        """The byte ranges [lo, hi) of the armed watchpoints, and who decides a match."""
        self._watch, self.watcher = list(ranges), watcher
        if self._fast is not None:
            st = self._fast.state
            st.n_watch = len(ranges)
            for i, (lo, hi) in enumerate(ranges):
                st.watch_lo[i], st.watch_hi[i] = lo, hi
        self.sync()

    def _watched(self, access: int, addr: int, size: int) -> bool:
        """A watchpoint matches this access: collect it (the instruction is undone)."""
        if not any(addr < hi and addr + size > lo for lo, hi in self._watch):
            return False
        hit = self.watcher(addr, size, access == UC_MEM_WRITE)
        if hit is None:
            return False
        self._collect()["watch"] = hit
        return True

    def _access(self, access: int, addr: int, size: int, value: int) -> None:
        p = self.pending
        if not self._watch or p is not None and "watch" not in p:
            self._align_access(access, addr, size)          # (an alignment fault being collected)
            return
        if p is None and not self._watched(access, addr, size):
            if self._checking:
                self._align_access(access, addr, size)
            return
        p = self.pending                # a watchpoint's: a store's bytes are saved to undo it
        if access == UC_MEM_WRITE:
            pa = self._physical(addr, True)
            m = self.m
            if pa is not None and RAM_BASE <= pa and pa + size <= RAM_BASE + m.ram_size:
                p["undo"].append((pa, bytes(m.ram[pa - RAM_BASE:pa - RAM_BASE + size])))

    def _align_access(self, access: int, addr: int, size: int) -> None:
        if not addr & (size - 1) and self.pending is None:
            # Unicorn makes a 128-bit access two 64-bit ones, so an access at 8 mod 16
            # is the second half of an aligned Q register or the first of an unaligned
            # one: the instruction's own address tells which.
            if size != 8 or addr & 15 != 8:
                return
            ld = self._ldst()
            if ld is None or alignment(ld) != 16:
                if self._fast is not None:         # the compiled hook answers it next time
                    self._fast.note_align8(self.cpu.pc)
                return
            cpu = self.cpu
            if not ld.address(cpu.base_reg, cpu.pc) & 15:
                return
        m = self.m
        pa = self._physical(addr, access == UC_MEM_WRITE)
        if pa is None:
            return              # a stage-2 fault: the shadow stage 2's path follows
        ram = RAM_BASE <= pa and pa + size <= RAM_BASE + m.ram_size
        if not ram and not any(d.base <= pa < d.base + d.size for d in m.devices):
            return              # unbacked: Unicorn's unmapped path follows (faults.external_abort)
        p = self._collect()
        if access == UC_MEM_WRITE and ram:      # a device does nothing while a fault is pending
            p["undo"].append((pa, bytes(m.ram[pa - RAM_BASE:pa - RAM_BASE + size])))

    def _collect(self) -> dict:
        """The fault being collected for the running instruction: its registers saved
        at its first faulting access, the CPU stopped after it (counted once: it is
        attempted)."""
        p = self.pending
        if p is None:
            cpu = self.cpu
            p = self.pending = {"pc": cpu.pc, "x": [cpu.reg(r) for r in _X], "sp": cpu.sp,
                                "q": [cpu.uc.reg_read(r) for r in _Q], "undo": []}
            cpu.stop_before_current()
        return p

    def _physical(self, addr: int, write: bool) -> int | None:
        """The physical address of an access the hook reports: the nested VM's, with its
        stage 1 off, is an IPA that L1's stage 2 translates (None: a stage-2 fault)."""
        v = self.vcpu.vel2
        if v is None or v.s2.regime != "s2":
            return addr
        r = v.s2.translate_ipa(addr, write)
        return None if isinstance(r, mmu.Fault) else r[0]

    def _ldst(self) -> decode.LdSt | None:
        """The load/store at PC, decoded (cached per PC)."""
        pc = self.cpu.pc
        if pc not in self._sizes:
            insn = self.cpu.read_insn(pc)
            self._sizes[pc] = decode.decode_ldst(insn) if insn is not None else None
        return self._sizes[pc]

    def code_changed(self, lo: int | None = None, hi: int | None = None) -> None:
        """Forget the decoded loads/stores in [lo, hi) (all without a range); the
        compiled hooks' caches are FastPath.code_changed's (SysregHooks._code_changed)."""
        if lo is None:
            self._sizes.clear()
        else:
            for pc in range(lo, hi, 4):
                self._sizes.pop(pc, None)

    def deliver(self) -> None:
        """Undo what the faulting instruction did and take the alignment fault (or the
        watchpoint's exception)."""
        p, self.pending = self.pending, None
        m = self.m
        uc = m.cpu.uc
        for pa, old in reversed(p["undo"]):
            m.ram[pa - RAM_BASE:pa - RAM_BASE + len(old)] = old
        for r, v in zip(_X, p["x"]):
            uc.reg_write(r, v)
        for r, v in zip(_Q, p["q"]):
            uc.reg_write(r, v)
        m.cpu.sp = p["sp"]
        pc = p["pc"]
        m.cpu.pc = pc
        if "watch" in p:
            far, take = p["watch"]
            take(pc, far)
            return
        insn = m.cpu.read_insn(pc)
        ld = decode.decode_ldst(insn) if insn is not None else None
        if ld is None:
            raise Unsupported("an unaligned access to Device memory by an instruction neve cannot decode", pc)
        cpu = m.cpu
        va = ld.address(cpu.base_reg, pc)
        fault(m, ld, va, pc)
