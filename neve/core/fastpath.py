"""The compiled fast path: Unicorn hooks in C (neve/core/_fastpath.c) that answer
the accesses the register table leaves to the CPU or to vEL2's storage, so that an
access which costs no trap on hardware costs no Python either.

What each hook does without Python, and when it calls the Python hook it stands in
front of (the reference implementation, which alone runs with NEVE_FASTPATH=0):

* MRS/MSR: a table per context, indexed by encoding and direction, built here from
  the machine's own decisions (`SysregHooks.el1_native`, `Vel2Sysregs.vel2_fast`,
  `Vel2Sysregs.forwards`): NATIVE (the CPU executes it; the Python path would have
  done nothing else), MEM/REDIRECT (vEL2's storage slot, with the row's write mask;
  the page-access counters count it), or SLOW (the Python hook).  The vEL2 table is
  fixed for the run; the EL1/EL0 tables of what L1 runs follow L1's trap controls and
  are built once per set of control values.
* before each block (one hook for both): the Python FP-trap hook only while an FP
  access could trap, and the unmask watch only once a PSTATE.I/F bit masking a
  pending interrupt is clear;
* world switches: a register program (neve/core/cpu.py OP_*) in one call;
* MSR DAIF: the CPU's unless an interrupt is pending but masked;
* each memory access while the Device-memory alignment check is on: the Python
  hook only for an access that is, or may be, unaligned;
* each instruction: the instruction counter (in place of emu_start's count=N, the
  same count and stop), which also calls the Python ERET/LDAR/STLR hook
  (neve/core/eret.py) at exactly the addresses it watches.

Trap counts, transcripts and virtual time are the same with and without it (the
differential tests run both).  When the module was not built, neve says so once on
stderr and runs on the Python path.
"""
from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import sys
from array import array
from typing import TYPE_CHECKING, Callable

from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE, UC_HOOK_INSN
from unicorn import arm64_const as A
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH
from unicorn.unicorn_py3.unicorn import uclib as _uclib

from neve.arch import decode, sysregs
from neve.arch.modes import Access
from neve.core.cpu import OP_CP_LOAD, OP_CP_SAVE
from neve.el2.sysreg import VIRTUAL_CONTROLS
from neve.observe import events as ev

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine

SLOW, NATIVE, MEM, REDIRECT, COUNT_P, COUNT_V, DAIF_W = 0, 1, 2, 3, 4, 5, 6
_COUNTERS = {"p": COUNT_P, "v": COUNT_V}
ADVANCE = 8
SLOT_SHIFT = 4
MAX_SLOTS = 1 << (16 - SLOT_SHIFT)
CTX_VEL2, CTX_EL1, CTX_EL0 = 0, 1, 2
ENTRIES = 1 << 17


CACHE_SIZE = 65536


class _BlockEntry(ctypes.Structure):
    _fields_ = (("addr", ctypes.c_uint64), ("space", ctypes.c_uint64), ("size", ctypes.c_uint32),
                ("valid", ctypes.c_uint32))


class _PcEntry(ctypes.Structure):
    _fields_ = (("pc", ctypes.c_uint64), ("valid", ctypes.c_uint32), ("pad", ctypes.c_uint32))


class _State(ctypes.Structure):
    """The C hooks' state (the `state` struct of _fastpath.c)."""
    _fields_ = (("reg_read", ctypes.c_void_p), ("reg_write", ctypes.c_void_p),
                ("py_mrs", ctypes.c_void_p), ("py_msr", ctypes.c_void_p),
                ("py_block", ctypes.c_void_p), ("py_mem", ctypes.c_void_p),
                ("table", ctypes.c_void_p * 3), ("store", ctypes.c_void_p), ("wmask", ctypes.c_void_p),
                ("reg_pc", ctypes.c_int32), ("reg_pstate", ctypes.c_int32),
                ("reg_cp", ctypes.c_int32), ("pad0", ctypes.c_int32),
                ("vel2_active", ctypes.c_int32), ("fp_want", ctypes.c_int32),
                ("fp_hold", ctypes.c_int32), ("align_pending", ctypes.c_int32),
                ("fp_space_known", ctypes.c_int32), ("pad", ctypes.c_int32), ("fp_space", ctypes.c_uint64 * 2),
                ("fp_free", ctypes.c_void_p), ("align8", ctypes.c_void_p),
                ("icount_base", ctypes.c_void_p), ("counter", ctypes.c_void_p), ("skipped", ctypes.c_void_p),
                ("cntvoff_slot", ctypes.c_int32), ("pad2", ctypes.c_int32),
                ("py_irq_block", ctypes.c_void_p), ("irq_watch", ctypes.c_uint64),
                ("py_code", ctypes.c_void_p), ("code_addrs", ctypes.c_void_p), ("n_code", ctypes.c_int64),
                ("py_sys", ctypes.c_void_p), ("emu_stop", ctypes.c_void_p),
                ("count", ctypes.c_uint64), ("limit", ctypes.c_uint64),
                ("code_lo", ctypes.c_uint64), ("code_hi", ctypes.c_uint64),
                ("page_counts", ctypes.c_uint64 * 2), ("hits", ctypes.c_uint64 * 6),
                ("uc_ctl", ctypes.c_void_p), ("tlb_flush", ctypes.c_int32),
                ("reg_sp", ctypes.c_int32), ("reg_sp_el", ctypes.c_int32 * 2),
                ("irq_masked", ctypes.c_int32), ("tlb_virtual", ctypes.c_int32), ("vmem_read", ctypes.c_void_p),
                ("watch_lo", ctypes.c_uint64 * 4), ("watch_hi", ctypes.c_uint64 * 4),
                ("n_watch", ctypes.c_int32), ("pad3", ctypes.c_int32),
                ("py_el_block", ctypes.c_void_p), ("el_watch", ctypes.c_int32), ("el_last", ctypes.c_int32),
                ("code_seen", ctypes.c_uint64 * 64))


class _RegOp(ctypes.Structure):
    """One op of a register program (neve/core/cpu.py OP_*; reg_op in _fastpath.c)."""
    _fields_ = (("kind", ctypes.c_uint32), ("crn", ctypes.c_uint32), ("crm", ctypes.c_uint32),
                ("op0", ctypes.c_uint32), ("op1", ctypes.c_uint32), ("op2", ctypes.c_uint32),
                ("reg", ctypes.c_int32), ("slot", ctypes.c_int32))


_LIB: ctypes.CDLL | None | bool = False       # False: not looked for yet
_WARNED = False


def library() -> ctypes.CDLL | None:
    """The compiled module, or None: not wanted (NEVE_FASTPATH=0) or not built (said
    once on stderr)."""
    global _LIB, _WARNED
    if os.environ.get("NEVE_FASTPATH", "1") == "0":
        return None
    if _LIB is False:
        try:
            spec = importlib.util.find_spec("neve.core._fastpath")
            if spec is None or spec.origin is None:
                raise ImportError("neve/core/_fastpath.c was not built (pip install -e . builds it)")
            lib = ctypes.CDLL(spec.origin)
            if lib.neve_fast_state_size() != ctypes.sizeof(_State):
                raise ImportError("its state layout differs from fastpath.py's (rebuild: pip install -e .)")
            _LIB = lib
        except (ImportError, OSError) as e:
            _LIB = None
            if not _WARNED:
                _WARNED = True
                print(f"neve: the compiled fast path is not available ({e}); running on the Python path",
                      file=sys.stderr)
    return _LIB


_ALL_SLOW = array("H", bytes(2 * ENTRIES))       # every access to Python
_SYS_SPAN = 2 << 14                              # the table entries of op0 = 1 (both directions)
_SYS_NATIVE: dict = {}                           # FastPath._sys_native's, per process


def _addr(fn) -> int:
    return ctypes.cast(fn, ctypes.c_void_p).value


def index(key: tuple, write: bool) -> int:
    """A table index: the encoding op0:op1:CRn:CRm:op2 and the direction."""
    op0, op1, crn, crm, op2 = key
    return (op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2) << 1 | int(write)


def _fill_runs(t: array, value: int, op0s, op1s, crns=range(16)) -> None:
    """Set every entry whose encoding has op0 in op0s, op1 in op1s, CRn in crns."""
    for op0 in op0s:
        for op1 in op1s:
            for crn in crns:
                lo = index((op0, op1, crn, 0, 0), False)
                t[lo:lo + 256] = array("H", [value]) * 256


class FastPath:
    """One vCPU's compiled hooks: the state they share with Python and the tables."""

    def __init__(self, lib: ctypes.CDLL, m: Machine) -> None:
        self.lib = lib
        self.m = m
        self.cpu = m.cpu
        self.state = _State()
        s = self.state
        s.reg_read, s.reg_write = _addr(_uclib.uc_reg_read), _addr(_uclib.uc_reg_write)
        s.reg_pc, s.reg_pstate, s.reg_cp = A.UC_ARM64_REG_PC, A.UC_ARM64_REG_PSTATE, A.UC_ARM64_REG_CP_REG
        s.emu_stop = _addr(_uclib.uc_emu_stop)
        s.uc_ctl = _addr(_uclib.uc_ctl)
        s.vmem_read = _addr(_uclib.uc_vmem_read)
        s.tlb_flush = UC_CTL_IO_WRITE << 30 | UC_CTL_TLB_FLUSH
        s.reg_sp = A.UC_ARM64_REG_SP
        s.reg_sp_el[0], s.reg_sp_el[1] = A.UC_ARM64_REG_SP_EL0, A.UC_ARM64_REG_SP_EL1
        # The instruction counter (neve_fast_count): registered first, so that it comes
        # before every other code hook as Unicorn's own would.
        m.cpu.count_with(ctypes.c_uint64.from_buffer(s, _State.count.offset),
                         ctypes.c_uint64.from_buffer(s, _State.limit.offset))
        self._counter_hook = self._add(UC_HOOK_CODE, lib.neve_fast_count)
        s.icount_base, s.counter = ctypes.addressof(m.cpu.base), m.cpu.counter_address()
        s.skipped = m.counter.skipped_address()
        s.cntvoff_slot = -1
        self._keep: list = []               # what C points into: kept alive here
        self.fp_free = (_BlockEntry * CACHE_SIZE)()
        self.align8 = (_PcEntry * CACHE_SIZE)()
        s.fp_free, s.align8 = ctypes.addressof(self.fp_free), ctypes.addressof(self.align8)
        self._el_tables: dict[tuple, tuple] = {}
        self._blocks_hook: int | None = None
        self._vel2_table = None
        self._key_el = None

    # --- hooks ---------------------------------------------------------------------
    def _add(self, htype: int, cfn, *args) -> int:
        return self.cpu.add_c_hook(htype, cfn, ctypes.addressof(self.state), *args)

    def hook_sysregs(self, py_mrs, py_msr) -> None:
        """Put the C MRS/MSR hooks in front of the Python ones (ctypes callbacks)."""
        self.state.py_mrs, self.state.py_msr = _addr(py_mrs), _addr(py_msr)
        self._keep += [py_mrs, py_msr]
        self._add(UC_HOOK_INSN, self.lib.neve_fast_mrs, ctypes.c_int(A.UC_ARM64_INS_MRS))
        self._add(UC_HOOK_INSN, self.lib.neve_fast_msr, ctypes.c_int(A.UC_ARM64_INS_MSR))

    def hook_sys(self, py_sys) -> None:
        """The C SYS hook in front of the Python one: only what the table says the
        CPU executes (op0 = 1 entries) skips Python."""
        self.state.py_sys = _addr(py_sys)
        self._keep.append(py_sys)
        self._add(UC_HOOK_INSN, self.lib.neve_fast_sys, ctypes.c_int(A.UC_ARM64_INS_SYS))

    def _sys_native(self, at_vel2: bool) -> tuple[array, list[tuple]]:
        """The op0 = 1 part of a table (from index((1, 0, 0, 0, 0), False), 2 x 16k
        entries) with NATIVE for the SYS instructions `sys_native` lets the CPU execute
        at hardware EL1 (`at_vel2`: vEL2's), and those encodings with their offsets
        in the part.  The same for every machine with the same `sys_native`: computed
        once per process."""
        key = (self.m.sys_native, at_vel2)
        got = _SYS_NATIVE.get(key)
        if got is None:
            part = array("H", [SLOW]) * _SYS_SPAN
            native = []
            lo = index((1, 0, 0, 0, 0), False)
            for op1 in range(8):
                for crn in range(16):
                    for crm in range(16):
                        for op2 in range(8):
                            if self.m.sys_native(op1, crn, crm, op2, at_vel2):
                                off = index((1, op1, crn, crm, op2), True) - lo
                                part[off] = NATIVE
                                native.append((off, op1, crn, crm, op2))
            got = _SYS_NATIVE[key] = (part, native)
        return got

    def _sys_ruled(self) -> dict:
        """Of the SYS instructions `sys_native` lets L1's EL1 code execute, those
        sysregs.SYS_TRAPS has a rule for: {rule: [offsets in the op0 = 1 part]}."""
        key = (self.m.sys_native, "ruled")
        got = _SYS_NATIVE.get(key)
        if got is None:
            got = _SYS_NATIVE[key] = {}
            for off, op1, crn, crm, op2 in self._sys_native(False)[1]:
                rule = sysregs.SYS_TRAPS.get(decode.sys_name(op1, crn, crm, op2))
                if rule is not None:
                    got.setdefault(rule, []).append(off)
        return got

    def _sys_entries(self, t: array, el: int, at_vel2: bool) -> None:
        """SYS instructions (op0 = 1): Python's, but for those `sys_native` says the
        CPU executes in this context."""
        lo = index((1, 0, 0, 0, 0), False)
        if el == 0 or not at_vel2 and self.m.vel2 is not None:
            t[lo:lo + _SYS_SPAN] = array("H", [SLOW]) * _SYS_SPAN
            return                              # EL0 checks, L1's trap controls: Python's
        t[lo:lo + _SYS_SPAN] = self._sys_native(at_vel2)[0]

    def _l1_sys_entries(self, t: array, controls: dict[str, int]) -> None:
        """SYS instructions of L1's EL1 code (below vEL2) that L1's trap controls
        `controls` leave alone (Vel2Sysregs.sys: no rule of sysregs.SYS_TRAPS holds)
        and that `sys_native` lets the CPU execute: NATIVE, as Python would let them
        run.  A kernel's DC and TLBI maintenance then costs no Python."""
        lo = index((1, 0, 0, 0, 0), False)
        part = array("H", self._sys_native(False)[0])
        for rule, offs in self._sys_ruled().items():
            if rule.holds(controls):
                for off in offs:
                    part[off] = SLOW
        t[lo:lo + _SYS_SPAN] = part

    def hook_block(self, py_block) -> int:
        """The FP-trap check before each block (Python: `py_block`)."""
        self._keep.append(py_block)
        self.state.py_block = _addr(py_block)
        return self._block_hook()

    def hook_irq_block(self, py_block) -> int:
        """The unmask watch before each block (Python: `py_block`)."""
        self._keep.append(py_block)
        self.state.py_irq_block = _addr(py_block)
        return self._block_hook()

    def hook_el_block(self, py_block) -> int:
        """The PMU's level watch before each block (Python: `py_block`, on a change)."""
        self._keep.append(py_block)
        self.state.py_el_block = _addr(py_block)
        return self._block_hook()

    def _block_hook(self) -> int:
        """One block hook for the checks (neve_fast_blocks), added by the first."""
        if self._blocks_hook is None:
            self._blocks_hook = self._add(UC_HOOK_BLOCK, self.lib.neve_fast_blocks)
        return self._blocks_hook

    def hook_code(self, py_code, addrs: list[int], old: int | None) -> None:
        """Call `py_code` at exactly `addrs`: the instruction counter's hook
        (neve_fast_count) checks them, so no other code hook is added (Unicorn walks
        its list of code hooks on every instruction).  Between slices only
        (CPU.between_slices), as the Python path's hooks take effect."""
        s = self.state
        if not s.py_code:
            s.py_code = _addr(py_code)
            self._keep.append(py_code)
        self.update_code(addrs)
        self.cpu.uc.ctl_flush_tb()          # as before: blocks translated anew after a change

    def scan(self, buf, lo: int, hi: int) -> list[tuple[int, int]]:
        """(offset, kind) of the words neve/core/eret.py hooks in buf[lo:hi], 4-byte
        aligned: kind 0 an ERET, 1 an LDAR/STLR (neve_fast_scan)."""
        base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        found: list[tuple[int, int]] = []
        cap = min(1 << 16, max(1, (hi - lo) // 4 + 1))     # (one IC IVAU line: 17 words)
        out, kinds = (ctypes.c_uint64 * cap)(), (ctypes.c_uint8 * cap)()
        while lo < hi:
            n = self.lib.neve_fast_scan(ctypes.c_void_p(base), ctypes.c_uint64(lo), ctypes.c_uint64(hi),
                                        out, kinds, ctypes.c_int64(cap))
            found += zip(out[:n], kinds[:n])
            if n < cap:
                break
            lo = out[n - 1] + 4
        return found

    def update_code(self, addrs: list[int]) -> None:
        """New addresses inside the hook's range: the C lookup follows at once."""
        arr = (ctypes.c_uint64 * len(addrs))(*sorted(addrs))
        self._code_addrs = arr
        s = self.state
        s.code_addrs, s.n_code = ctypes.addressof(arr), len(arr)
        if len(arr):
            s.code_lo, s.code_hi = arr[0], arr[-1]

    def hook_mem(self, htype: int, py_mem) -> int:
        self.state.py_mem = _addr(py_mem)
        self._keep.append(py_mem)
        return self._add(htype, self.lib.neve_fast_mem)

    # --- world switches ------------------------------------------------------------------
    def reg_program(self, ops: list[tuple[int, object, int]]) -> Callable[[], int]:
        """A register program (CPU.reg_ops's list) against vEL2's storage, prepared:
        a callable that runs it in one C call and returns 0, or 1 + the index of the
        op Unicorn refused."""
        x = (_RegOp * len(ops))()
        for e, (op, arg, slot) in zip(x, ops):
            e.kind, e.slot = op, slot
            if op in (OP_CP_SAVE, OP_CP_LOAD):
                e.op0, e.op1, e.crn, e.crm, e.op2 = arg
            elif arg is not None:
                e.reg = arg
        self._keep.append(x)
        return functools.partial(self.lib.neve_fast_reg_ops, ctypes.byref(self.state), self.cpu.handle(), x, len(x))

    # --- flags and caches the Python side keeps ------------------------------------------
    def set_vel2_active(self, active: bool) -> None:
        self.state.vel2_active = active

    def set_fp_space(self, space: tuple[int, int] | None) -> None:
        """The (TTBR0_EL1, TTBR1_EL1) the FP-free block cache is keyed by now, or
        None: not known (after a regime change, until the Python hook reads it)."""
        s = self.state
        if space is None:
            s.fp_space_known = 0
        else:
            s.fp_space[0], s.fp_space[1] = space
            s.fp_space_known = 1

    def note_fp_free(self, addr: int, size: int, space: int) -> None:
        """The block at `addr` (in `space`) holds no FP instruction."""
        e = self.fp_free[(addr >> 2) & (CACHE_SIZE - 1)]
        e.addr, e.size, e.space, e.valid = addr, size, space, 1

    def note_align8(self, pc: int) -> None:
        """The load/store at `pc` needs no more than 8-byte alignment."""
        e = self.align8[(pc >> 2) & (CACHE_SIZE - 1)]
        e.pc, e.valid = pc, 1

    def code_changed(self, lo: int | None = None, hi: int | None = None) -> None:
        """Instruction-cache maintenance: what the caches say about the code in
        [lo, hi) (all code without a range) may be stale."""
        if lo is None:
            ctypes.memset(self.fp_free, 0, ctypes.sizeof(self.fp_free))
            ctypes.memset(self.align8, 0, ctypes.sizeof(self.align8))
        else:
            self.lib.neve_fast_forget(ctypes.byref(self.state), ctypes.c_uint64(lo), ctypes.c_uint64(hi))

    # --- tables --------------------------------------------------------------------------
    def _install(self, ctx: int, table: array) -> None:
        self.state.table[ctx] = table.buffer_info()[0]

    def build(self) -> None:
        """The tables for the run's start: vEL2's (fixed), and EL1/EL0's."""
        m = self.m
        v = m.vel2
        if v is not None:
            self._build_vel2()
            m.bus.watch(self._subscribed)
            self.state.cntvoff_slot = v.slot["CNTVOFF_EL2"]
            self.state.store = ctypes.addressof(v.store)
            self.state.wmask = ctypes.addressof(v.wmask)
            self.set_vel2_active(v.active)
        if v is None or not v.active:
            self.refresh_el()
        else:                                   # built at the first ERET to EL1 (enter_el1)
            self._install(CTX_EL1, _ALL_SLOW)
            self._install(CTX_EL0, _ALL_SLOW)

    def _build_vel2(self) -> None:
        self._vel2_table = self._vel2()
        self._install(CTX_VEL2, self._vel2_table)

    def _subscribed(self, kind: type) -> None:
        if kind is ev.PageAccess:            # its events are built by the Python path only
            self._build_vel2()

    def refresh_el(self) -> None:
        """The EL1/EL0 tables for the trap controls in force below (vEL2) now."""
        v = self.m.vel2
        key = v.forward_key() if v is not None else None
        if key == self._key_el and self._key_el is not None:
            return
        tables = self._el_tables.get(key)
        if tables is None:
            tables = self._el_tables[key] = (self._el(1, key), self._el(0, key))
        self._key_el = key
        self._install(CTX_EL1, tables[0])
        self._install(CTX_EL0, tables[1])

    def _base(self, el: int) -> array:
        """Encodings that are not rows of the register table, at hardware `el`: the
        CPU executes them (or UNDEFs them itself), but for the counter views the
        table lacks."""
        t = array("H", [NATIVE]) * ENTRIES
        for key, counter in self.m.unlisted_counters():
            t[index(key, True)] = SLOW
            t[index(key, False)] = self._entry(_COUNTERS[counter], key, False, el)
        return t

    def _entry(self, act: int, key: tuple, write: bool, el: int, slot: int = 0) -> int:
        """An entry that the C hook completes: ADVANCE where Unicorn does not skip the
        instruction by itself."""
        adv = 0 if self.cpu.uc_accessible(key, write, el) else ADVANCE
        return act | adv | slot << SLOT_SHIFT

    def _el(self, el: int, key) -> array:
        m = self.m
        v = m.vel2
        t = self._base(el)
        self._sys_entries(t, el, False)
        controls = v.controls_of(key) if v is not None else None
        if controls is not None and el == 1:
            self._l1_sys_entries(t, controls)
        if controls is not None and el == 1 and sysregs.TIDCP.holds(controls):
            _fill_runs(t, SLOW, (3,), range(8), (11, 15))      # IMPLEMENTATION DEFINED encodings
        hcr = 0 if key is None else dict(zip(VIRTUAL_CONTROLS, key))["HCR_EL2"]
        for r in sysregs.REGISTERS:
            for write in (False, True):
                if controls is not None and v.forwards(r.key, write, el, controls):
                    t[index(r.key, write)] = SLOW
                else:
                    t[index(r.key, write)] = self._el1_entry(r.key, write, el, hcr)
        return t

    def _el1_entry(self, key: tuple, write: bool, el: int, hcr: int = 0) -> int:
        """The machine's EL1/EL0 path (SysregHooks): native, a counter read, or Python.
        `hcr`: the HCR_EL2 in force for the code the table is for."""
        m = self.m
        if m.el1_native(key, write, el, hcr):
            return NATIVE
        if write and el == 1 and m.daif_native_unless_masked(key):
            return DAIF_W
        counter = None if write else m.counter_read(key, el)
        return self._entry(_COUNTERS[counter], key, False, el) if counter else SLOW

    def _vel2(self) -> array:
        m, v = self.m, self.m.vel2
        t = self._base(1)                               # vEL2 runs at hardware EL1
        self._sys_entries(t, 1, True)
        _fill_runs(t, SLOW, range(4), (4, 5, 6))       # EL2/EL3 encodings the table lacks
        for r in sysregs.REGISTERS:
            for write in (False, True):
                ent = v.vel2_fast(r.key, write)
                if ent is None:                         # the machine's EL1 path
                    t[index(r.key, write)] = self._el1_entry(r.key, write, 1)
                elif ent is False:
                    t[index(r.key, write)] = SLOW
                else:
                    acc, slot = ent
                    act = REDIRECT if acc == Access.REDIRECT else MEM
                    t[index(r.key, write)] = self._entry(act, r.key, write, 1, slot) if slot < MAX_SLOTS else SLOW
        return t

    # --- what it did ---------------------------------------------------------------------
    def hits(self) -> dict[str, int]:
        """Accesses the MRS/MSR hooks saw, by what answered them."""
        h = self.state.hits
        return {"python": h[SLOW], "native": h[NATIVE], "mem": h[MEM], "redirect": h[REDIRECT],
                "counter": h[COUNT_P] + h[COUNT_V]}
