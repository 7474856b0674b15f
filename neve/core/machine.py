"""The board and its run loop.

The Machine owns what the vCPUs share (RAM, devices, the GIC's state and frames, the
system counter, the shadow stage-2 tables, the event bus) and builds each vCPU
(neve/core/vcpu.py) in dependency order.  Its run loop runs the guest in slices
bounded by the passive clocks (timers, PMU, interrupt re-checks), the instruction
budget and the timeout.  Everything that would take the CPU to L0 reaches a Unicorn
hook: exceptions are rebuilt and taken in neve/core/entry.py, MRS/MSR/SYS are handled
in neve/core/sysreg_hooks.py (both mixins of the Machine), and each is published once
on the event bus as an `events.Trap`; counters and traces subscribe.

In the nested modes the first image runs at *virtual EL2*: see neve/el2/vel2.py.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Callable

from unicorn import UcError, UC_HOOK_INTR, UC_HOOK_MEM_UNMAPPED
from unicorn import UC_ERR_FETCH_PROT
from unicorn import arm64_const as A
from unicorn.unicorn_py3.unicorn import HOOK_INTR_CFUNC

from neve.core import faults, elf, fastpath
from neve.boot import dtb
from neve.arch import decode
from neve.observe import events as ev
from neve.core.align import DeviceAlignment
from neve.core.eret import EretHooks
from neve.core.fptrap import FPTraps
from neve.core.cpu import CPU, alloc_ram
from neve.core.vcpu import VCPU
from neve.core.entry import ExceptionEntry
from neve.core.result import Result, Stop
from neve.core.sysreg_hooks import SysregHooks
from neve.gic.delivery import Interrupts
from neve.el2.vel2 import VirtualEL2
from neve.devices.pl011 import PL011
from neve.devices.timer import CNTFRQ, Counter
from neve.gic.mmio import Distributor, Redistributors
from neve.gic.state import GICv3
from neve.errors import BadInput, GuestError, NeveError, Wedged
from neve.arch.platform import BOARD, RAM_BASE, RAM_SIZE_DEFAULT, UART_BASE, UART_INTID, board_device
from neve.devices import DeviceClock
from neve.observe.stats import Stats
from neve.arch.modes import MODES, NESTED_MODES, Mode

MAX_SMP = 8                 # --smp: QEMU virt's GICv3 redistributor frames fit many more
QUANTUM = 100_000           # --quantum: instructions a vCPU runs before the next one's turn


class Machine(ExceptionEntry, SysregHooks):
    """The board (what the vCPUs share) and the run loop; the hooks' handling lives in
    its two mixins (neve/core/entry.py, neve/core/sysreg_hooks.py)."""

    def __init__(self, images: list[elf.Image], *, mode: str = "vm", ram_size: int = RAM_SIZE_DEFAULT,
                 max_insns: int | None = None, timeout: float | None = None,
                 uart_out: Callable[[bytes], None] | None = None,
                 semihost_out: Callable[[bytes], None] | None = None, policy=None, boot=None,
                 uart_in=None, bios: bytes | None = None, pflash: tuple | None = None, rtc_epoch: int = 0,
                 power_button_at: int | None = None, smp: int = 1, quantum: int = QUANTUM) -> None:
        if mode not in MODES:
            raise BadInput(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
        if not isinstance(smp, int) or not 1 <= smp <= MAX_SMP:
            raise BadInput(f"--smp {smp}: the board has 1 to {MAX_SMP} CPUs")
        if not isinstance(quantum, int) or quantum < 1:
            raise BadInput(f"--quantum {quantum}: must be a positive number of instructions")
        self.quantum = quantum
        self._quantum_left = quantum
        if not images and boot is None:
            raise BadInput("no image given")
        self.boot = boot                # neve.boot.Boot: --kernel/--bios/--dtb (None: ELF images only)
        self.dtb: bytes | None = None   # the device tree given to the guest (neve/boot/dtb.py)
        self.mode = Mode(mode)
        self.policy = policy
        if policy is not None and mode != policy.base:
            raise BadInput(f"policy {policy.name} is based on mode {policy.base}, not {mode}")
        self.images = images
        # The board's devices built from its table read these (neve/arch/platform.py BOARD):
        if bios is None and boot is not None:
            bios = boot.bios
        self.bios = bios                        # flash bank 0's contents (QEMU's -bios)
        self.pflash = pflash                    # files backing the flash banks, by unit (None: the run's own)
        self.rtc_epoch = rtc_epoch              # the PL031's count at virtual time 0, in seconds
        self.power_button_at = power_button_at  # system counter value of a power-button press
        self.symbols = elf.SymbolTable(images)
        self.symbols.code_pa = self.code_pa
        self.ram_size = ram_size
        self.max_insns = max_insns
        self.timeout = timeout
        self.transcript = bytearray()
        self._uart_out = uart_out
        self._semihost_out = semihost_out or (lambda b: (sys.stderr.buffer.write(b), sys.stderr.flush()))
        self.bus = ev.Bus()
        self.stats = Stats(self.bus)
        self.stats.page_counts = self.page_counts
        self.result: Result | None = None
        self.clocks: list = []
        self.clocks_now: list = []          # the clocks of the board and of the running vCPU
        self._pause_reason: str | None = None
        self._deadline: float | None = None
        self._interrupted = False           # SIGINT arrived while Unicorn ran (_on_sigint)
        self.waiting_on_host = False        # blocked in a host wait (WFI for live input)
        # --- the board: what the CPUs share, built in dependency order ---------------
        self.ram = alloc_ram(ram_size)
        self.devices: list = []
        self.vcpus: list[VCPU] = []
        self.uart = PL011(UART_BASE, self._uart_write, uart_in, self._uart_line)
        self.add_device(self.uart)
        self._loaded: list[tuple[int, int, str]] = []     # (start, end, image) of every segment loaded
        for im in images:
            self._load(im)
        self.counter = Counter(self.icount)               # the system counter (neve/devices/timer.py)
        self.stage2_shadows: dict = {}                    # VMID -> the nested VM's shadow stage 2 (neve/el2/stage2.py)
        for i in range(smp):
            self._build_vcpu(i)
        # GICv3 (neve/gic): the interrupt state and the MMIO frames are the board's;
        # each vCPU's CPU interface, timers and PMU are its own (Interrupts).
        self.gic = GICv3(len(self.vcpus), [v.cpu.read_sysreg("MPIDR_EL1") for v in self.vcpus])
        self.gic.on_change = self._gic_changed
        self.add_device(Distributor(self.gic))
        self.add_device(Redistributors(self.gic))
        for row in BOARD:                        # the rest of the board, from its table
            cls = row.cls() if row.model else None
            if cls is not None and hasattr(cls, "create"):
                self.add_device(cls.create(self, row))
        self.device_clock = DeviceClock(self.counter, [d for d in self.devices if hasattr(d, "next_deadline")])
        self.add_clock(self.device_clock)
        for v in self.vcpus:
            v.irq = Interrupts(self, v, self.gic, self.counter)
            self.add_clock(v.irq)
            if v.vel2 is not None:
                v.vel2.connect(v.irq)
                v.vel2.reset()
        for v in self.vcpus:
            if v.fast is not None:
                self.run_on(v)
                v.fast.build()
        if boot is not None:
            self._install_dtb()
        self.run_on(self.vcpus[0])
        self.regime_changed()

    def _build_vcpu(self, index: int) -> VCPU:
        """A vCPU with the shared RAM and devices mapped, its hooks, the checks neve
        makes beside Unicorn and, in the nested modes, its virtual EL2."""
        v = VCPU(index, CPU())
        self.vcpus.append(v)
        if index:
            # MPIDR_EL1 as QEMU's virt gives CPU n (Aff0 = n, up to 8): EL1 reads it from
            # VMPIDR_EL2, which L0 sets.  Secondary CPUs start off (PSCI CPU_ON).
            v.cpu.write_sysreg("VMPIDR_EL2", 0x8000_0000 | index)
            v.power = "off"
        else:
            self._sctlr_reset = v.cpu.read_sysreg("SCTLR_EL1")     # (what CPU_ON gives a CPU)
        v.affinity = v.cpu.read_sysreg("MPIDR_EL1") & 0xFF_00FF_FFFF
        self.run_on(v)                  # the parts below reach the CPU they are built for
        cpu = v.cpu
        lib = fastpath.library()
        v.fast = fastpath.FastPath(lib, self) if lib is not None else None
        cpu.map_ram_buffer(RAM_BASE, self.ram)
        for dev in self.devices:
            self._map_device(cpu, dev)
        v.align = self.align = DeviceAlignment(self)
        v.fp = self.fp = FPTraps(self)
        v.erets = self.erets = EretHooks(self)
        uc = cpu.uc
        # A bare ctypes callback: the binding's wrapper costs a Python frame per exception.
        self._intr_cfunc = HOOK_INTR_CFUNC(self._intr_raw)
        cpu.add_hook_raw(UC_HOOK_INTR, self._intr_cfunc)
        if v.fast is not None:                # C in front of the Python hooks
            v.fast.hook_sysregs(cpu.sysreg_cfunc(self._hook_mrs), cpu.sysreg_cfunc(self._hook_msr))
        else:
            cpu.add_sysreg_hook(A.UC_ARM64_INS_MRS, self._hook_mrs)
            cpu.add_sysreg_hook(A.UC_ARM64_INS_MSR, self._hook_msr)
        if v.fast is not None:
            v.fast.hook_sys(cpu.sysreg_cfunc(self._hook_sys))
        else:
            cpu.add_sysreg_hook(A.UC_ARM64_INS_SYS, self._hook_sys)
        # Unmapped accesses, over the physical addresses outside RAM (RAM is always
        # mapped, so none is lost): Unicorn keeps every store to a page under a memory
        # hook on its slow path (its self-modifying-code check, forever), so a hook
        # covering RAM made each store of the guest cost a TB lookup.
        end = RAM_BASE + self.ram_size
        uc.hook_add(UC_HOOK_MEM_UNMAPPED, self._hook_unmapped, None, 0, RAM_BASE - 1)
        uc.hook_add(UC_HOOK_MEM_UNMAPPED, self._hook_unmapped, None, end, (1 << 64) - 1)
        cpu.pc = self.boot.entry if self.boot is not None else self.images[0].entry
        # RAM outside the loaded images is zero, so only they can hold an ERET now;
        # code written later is scanned when the guest does its IC maintenance.
        for im in self.images:
            for seg in im.segments:
                v.erets.scan(seg.paddr, seg.memsz)
        if self.mode in NESTED_MODES:
            v.vel2 = self.vel2 = VirtualEL2(self, self.mode, self.policy)
        return v

    def run_on(self, v: VCPU) -> None:
        """Make `v` the vCPU the machine's code acts on: `cpu`, `vel2`, `irq`, `align`,
        `fp` and `erets` are its parts (plain attributes, not properties: the hooks
        read them on every trap)."""
        self.vcpu = v
        self.cpu, self.vel2, self.irq = v.cpu, v.vel2, v.irq
        self.align, self.fp, self.erets = v.align, v.fp, v.erets
        self._clocks_for(v)

    def _clocks_for(self, v: VCPU) -> None:
        """clocks_now: every clock but the other vCPUs' interrupt subsystems (each
        ticks while its own vCPU runs; Machine._schedule wakes a sleeping one)."""
        self.clocks_now = [c for c in self.clocks if getattr(c, "vcpu", v) is v]

    def _gic_changed(self, mmio: bool = False) -> None:
        """The GIC's state changed: every vCPU re-evaluates its interrupt lines (the
        running one now, the others when they run next)."""
        for v in self.vcpus:
            if v.irq is not None:
                if v is self.vcpu:
                    v.irq.kick(mmio)
                else:
                    v.irq.touch()
                    if v.asleep:                # it may wake: the scheduler looks at once
                        self.cpu.end_slice_after_current()

    # --- set-up --------------------------------------------------------------------
    def add_device(self, dev) -> None:
        """A device of the board: mapped into every vCPU's address space."""
        self.devices.append(dev)
        for v in self.vcpus:
            self._map_device(v.cpu, dev)

    def _map_device(self, cpu: CPU, dev) -> None:
        # Unicorn splits a 64-bit access to MMIO into two 32-bit ones.  A device whose
        # registers care (dev.wide) gets it whole: the first half makes the access,
        # the second takes the other 32 bits.
        half: list = []

        def wide(size: int) -> bool:
            if size != 4 or not dev.wide:
                return False
            insn = self.cpu.read_insn(self.cpu.pc)
            ld = decode.decode_ldst(insn) if insn is not None else None
            return ld is not None and ld.size == 8

        def rd(uc, off, size, _):
            if self.align.pending is not None:      # an alignment fault: no access
                return 0
            if half and half[0][0] == off:
                return half.pop()[1]
            if wide(size):
                v = dev.read(off, 8)
                self.trap(ev.MMIO, dev.reg_name(off), "r", v)
                half.append((off + 4, v >> 32))
                return v & 0xFFFF_FFFF
            v = dev.read(off, size)
            self.trap(ev.MMIO, dev.reg_name(off), "r", v)
            return v

        def wr(uc, off, size, value, _):
            if self.align.pending is not None:
                return
            if half and half[0][0] == off:
                lo = half.pop()[1]
                value = lo | (value & 0xFFFF_FFFF) << 32
                self.trap(ev.MMIO, dev.reg_name(off - 4), "w", value)
                dev.write(off - 4, 8, value)
                return
            if wide(size):
                half.append((off + 4, value & 0xFFFF_FFFF))
                return
            self.trap(ev.MMIO, dev.reg_name(off), "w", value)
            dev.write(off, size, value)

        attach = getattr(dev, "attach", None)
        if attach is not None:          # a device that maps itself (the flash: memory in read-array mode)
            attach(cpu, rd, wr)
        else:
            cpu.uc.mmio_map(dev.base, dev.size, rd, None, wr, None)

    def _load(self, im: elf.Image) -> None:
        end_ram = RAM_BASE + self.ram_size
        for s in im.segments:
            lo, hi = s.paddr, s.paddr + s.memsz
            if not (RAM_BASE <= lo and hi <= end_ram):
                dev = self.device_at(lo)
                where = f"overlaps the {dev}" if dev else "is outside RAM"
                raise BadInput(f"{im.path}: segment {lo:#x}-{hi:#x} {where} "
                               f"(RAM is {RAM_BASE:#x}-{end_ram:#x})")
            other = next(((a, b, n) for a, b, n in self._loaded if lo < b and a < hi), None)
            if other is not None:
                raise BadInput(f"{im.path}: segment {lo:#x}-{hi:#x} overlaps {other[2]}'s {other[0]:#x}-{other[1]:#x} "
                               "(as QEMU, neve refuses overlapping images)")
            self._loaded.append((lo, hi, im.name))
            off = lo - RAM_BASE
            self.ram[off:off + len(s.data)] = s.data
            self.ram[off + len(s.data):off + s.memsz] = bytes(s.memsz - len(s.data))

    def _install_dtb(self) -> None:
        """The device tree (the user's --dtb, or generated from the board now that its
        devices exist), written where neve.boot placed it."""
        b = self.boot
        self.dtb = b.user_dtb if b.user_dtb is not None else dtb.generate(self, bootargs=b.bootargs,
                                                                              initrd=b.initrd)
        if b.dtb_addr is not None:
            off = b.dtb_addr - RAM_BASE
            self.ram[off:off + len(self.dtb)] = self.dtb

    def backed(self, pa: int) -> bool:
        """Is there something at this physical address (RAM or an emulated device)?"""
        if RAM_BASE <= pa < RAM_BASE + self.ram_size:
            return True
        return any(d.base <= pa < d.base + d.size for d in self.devices)

    def executable(self, pa: int) -> bool:
        """Can code run from this physical address: RAM, or a device mapped as memory
        (flash bank 0 in read-array mode)?"""
        if RAM_BASE <= pa < RAM_BASE + self.ram_size:
            return True
        return any(d.base <= pa < d.base + d.size and getattr(d, "executable", lambda _: False)(pa)
                   for d in self.devices)

    def device_at(self, pa: int) -> str | None:
        """The device of the QEMU virt map at a physical address, modelled or not."""
        return board_device(pa) or next((d.name for d in self.devices if d.base <= pa < d.base + d.size), None)

    def _uart_write(self, b: bytes) -> None:
        self.transcript += b
        if self._uart_out:
            self._uart_out(b)

    def _uart_line(self, level: bool) -> None:
        """The PL011's interrupt output, a level on its SPI.  Called from the UART's
        MMIO access (or a WFI): the slice ends once the accessing instruction is
        complete (not with emu_stop, which would make Unicorn repeat the access: a
        FIFO popped twice), so the run loop delivers an interrupt it raised right
        after it."""
        self.set_spi_line(UART_INTID, level)

    def set_spi_line(self, intid: int, level: bool) -> None:
        """A device's interrupt output (a level on SPI `intid`), from its MMIO access, a
        WFI or its own deadline; as _uart_line."""
        self.gic.spi.set_line(intid, level)
        for v in self.vcpus:
            if v.irq is not None:
                v.irq.touch()
        self.cpu.end_slice_after_current()

    # --- state queries ---------------------------------------------------------------
    @property
    def level(self) -> str:
        if self.vel2 is not None and self.vel2.active:
            return "vEL2"
        return "EL0" if self.cpu.el() == 0 else "EL1"

    def icount(self) -> int:
        return self.cpu.icount()

    def code_pa(self, va: int) -> int | None:
        """The physical address the running context fetches `va` from (None: it cannot
        fetch from there): through vEL2's own regime, or the nested VM's two stages, by
        neve's walks, which have no side effect (Unicorn's probe would enter its
        TLB-fill hook, which takes the fault); else Unicorn's."""
        s2 = self.vel2.s2 if self.vel2 is not None else None
        if s2 is not None and s2.regime == "el2":
            t = s2.translate_el2(va, execute=True)
            return t.pa if getattr(t, "executable", False) is True else None
        if s2 is not None and s2.regime == "s2":
            r = s2.translate_l2(va, execute=True, el=self.cpu.el())
            return r[0] if isinstance(r, tuple) and len(r) == 4 and r[3] else None
        return self.cpu.translate(va, 4)

    def where(self, pc: int, sym: str | None = None) -> str:
        """`pc` with its symbol+offset (`sym` when the caller has it: Trap.symbol)."""
        sym = sym or self.symbols.lookup(pc)
        return f"{pc:#x} <{sym}>" if sym else f"{pc:#x}"

    # --- events ----------------------------------------------------------------------
    def trap(self, cls: str, name: str, rw: str = "", value: int | None = None, *, pc: int | None = None,
             insn: int | None = None, reason: str = "", forwarded: bool = False, level: str | None = None,
             pc_known: bool = True) -> None:
        """Publish a Trap.  `pc` defaults to the CPU's; pc_known=False: nobody knows
        it (an ERET the safety net caught: the CPU is at the net's address), None."""
        cpu = self.cpu
        if pc is None and pc_known:
            pc = cpu.pc
        if level is None:
            at_vel2 = self.vel2 is not None and self.vel2.active
            el = 1 if at_vel2 else cpu.el()             # vEL2 runs at hardware EL1
            level = "vEL2" if at_vel2 else "EL0" if el == 0 else "EL1"
        else:                                           # the caller knows it (Machine.level)
            el = 0 if level == "EL0" else 1
        bus = self.bus
        bus.seq += 1                                    # (bus.next_seq())
        sym = self.symbols.lookup(pc) if self.symbols.has_kernel_map and pc is not None else None
        bus.publish(ev.Trap(bus.seq, cpu.icount(), pc, level, el, cls, name, rw, value, insn, reason, forwarded,
                            sym))

    def hypercall_begin(self, guest: str) -> None:
        if self.vcpu.hypercall_guest is None:
            self.vcpu.hypercall_guest = guest
            self.bus.publish(ev.Hypercall("begin", self.icount(), guest))

    def guest_resumed(self, guest: str) -> None:
        """Called whenever a guest context starts running again."""
        open_ = self.vcpu.hypercall_guest
        if open_ is None:
            return
        if open_ == guest:
            self.vcpu.hypercall_guest = None
            self.bus.publish(ev.Hypercall("end", self.icount(), guest))
        elif open_ == "vEL1-host":
            # L1's host kernel called its hypervisor, which ran another context.
            self.vcpu.hypercall_guest = None
            self.bus.publish(ev.Hypercall("cancel", self.icount(), open_))

    def stop(self, reason: str, status: int, message: str = "") -> None:
        raise Stop(Result(reason, status, message))

    # --- the run loop ----------------------------------------------------------------
    SLICE = 50_000_000

    def add_clock(self, obj) -> None:
        """Register a passive time source: `obj.next_event(icount) -> int | None` says
        at which instruction count it next needs attention, `obj.tick(icount)` is
        called once the CPU has run that far.  The machine never runs past it."""
        self.clocks.append(obj)
        self._clocks_for(self.vcpu)

    def pause(self, reason: str) -> None:
        """From a hook or subscriber: stop after the current instruction and return
        from run() with Result("paused") (the debugger and the GDB stub use this)."""
        self._pause_reason = reason
        self.cpu.uc.emu_stop()

    def run(self, max_slice: int | None = None) -> Result:
        """Run until the guest stops, a budget runs out, or pause() is called.  A
        paused machine resumes with another run()."""
        cpu = self.cpu
        if self.result is not None and self.result.reason != "paused":
            return self.result
        self.result = None
        if self._deadline is None and self.timeout:
            self._deadline = time.monotonic() + self.timeout
        # The host-time limit: one watchdog thread for the whole run() stops the CPU
        # when it expires, and the loop below reports it.  (Unicorn's own emu_start
        # timeout starts a thread at every emu_start: a third of a Linux boot's time.)
        watchdog = None
        if self._deadline is not None and self._deadline > time.monotonic():
            watchdog = threading.Timer(self._deadline - time.monotonic(), self._time_up)
            watchdog.daemon = True
            watchdog.start()
        # SIGINT (Ctrl-C) must not raise KeyboardInterrupt inside one of Unicorn's
        # callbacks before its `try` (ctypes would print it and drop it, and the run
        # would go on): while emulation runs it stops the CPU, and the loop below
        # raises it once emu_start has returned.
        old_sigint = None
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            old_sigint = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            return self._run(cpu, max_slice)
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if old_sigint is not None:
                signal.signal(signal.SIGINT, old_sigint)

    def _on_sigint(self, signum, frame) -> None:
        """SIGINT during run(): KeyboardInterrupt now where it is safe (Python outside
        emulation, or blocked in a host wait, deep inside a hook's own handler), else
        once the stopped emu_start returns."""
        self._interrupted = True
        if not self.cpu.in_emulation() or self.waiting_on_host:
            self._interrupted = False
            raise KeyboardInterrupt
        self.cpu.uc.emu_stop()

    def host_time_left(self) -> float | None:
        """Seconds of host time before --timeout ends the run (None: no limit); for the
        places that wait in host time (a WFI waiting for stdin)."""
        return None if self._deadline is None else self._deadline - time.monotonic()

    def _time_up(self) -> None:
        """The watchdog's thread: end the running slice (nothing when none runs)."""
        self.cpu.uc.emu_stop()

    def _run(self, cpu: CPU, max_slice: int | None) -> Result:
        smp = len(self.vcpus) > 1
        while self.result is None:
            if smp:
                try:
                    self._schedule()
                except Stop as s:
                    self.result = s.result
                    break
                except NeveError as e:
                    self.result = Result(e.reason, e.exit_code, e.message)
                    break
                cpu = self.cpu
            budget = max_slice or self.SLICE
            now = cpu.icount()
            if self.max_insns is not None:
                left = self.max_insns - now
                if left <= 0:
                    self.result = Result("budget", 124, f"instruction budget of {self.max_insns} exhausted "
                                                        f"at PC {self.where(cpu.pc)}")
                    break
                budget = min(budget, left)
            for c in self.clocks_now:
                t = c.next_event(now)
                if t is not None:
                    if t <= now:
                        c.tick(now)
                        t = c.next_event(now)
                    if t is not None:
                        budget = max(1, min(budget, t - now))
            if self._deadline is not None and self._deadline <= time.monotonic():
                self.result = Result("timeout", 124, f"timeout of {self.timeout}s reached at PC {self.where(cpu.pc)}")
                break
            self.vcpu.pending = None    # left by a probe outside a run: not for this one
            if smp:
                budget = min(budget, self._smp_budget(now))
            budget = self.fp.budget(cpu.pc, budget)
            try:
                try:
                    self.vcpu.hook_error = None
                    cpu.run(cpu.pc, budget)
                    if self._interrupted:
                        self._interrupted = False
                        raise KeyboardInterrupt
                    if self.vcpu.hook_error is not None:
                        raise self.vcpu.hook_error
                    if self.align.pending is not None:
                        self.align.deliver()
                    self.fp.after_slice()
                except UcError as e:
                    if self.vcpu.pending is None and e.errno == UC_ERR_FETCH_PROT:
                        faults.fetch_from_device(self, cpu.pc)
                    if self.vcpu.pending is None:
                        raise GuestError(f"emulation error at PC {self.where(cpu.pc)}: {e}") from None
                    pending, self.vcpu.pending = self.vcpu.pending, None
                    self.align.pending = None       # the abort path decides (alignment first)
                    pending()
            except Stop as s:
                self.result = s.result
            except NeveError as e:
                self.result = Result(e.reason, e.exit_code, e.message)
            if smp:
                self._quantum_left -= max(1, cpu.icount() - now)
            if self.result is None and self._pause_reason is not None:
                self.result = Result("paused", 0, self._pause_reason)
                self._pause_reason = None
            if self.result is None and max_slice is not None:
                self.result = Result("paused", 0, "slice done")
        return self.result

    # --- several vCPUs ----------------------------------------------------------------
    def _schedule(self) -> None:
        """Before each slice with several vCPUs: the running one goes on until its
        quantum is used up, it sleeps in WFI or it is off; then the next one that can
        run, in index order (round robin), wakes or starts.  When every CPU that is on
        sleeps, the system counter skips to the next deadline (`_idle`).  Deterministic:
        the order and the quanta depend on the guest's instructions alone."""
        v = self.vcpu
        if v.power == "on" and not v.asleep and self._quantum_left > 0:
            return
        n = len(self.vcpus)
        while True:
            for k in range(1, n + 1):
                w = self.vcpus[(v.index + k) % n]
                if w.power != "on" or not self._awake(w):
                    continue
                self._switch_to(w)
                return
            if not any(w.power == "on" for w in self.vcpus):
                raise Wedged("every CPU is off (PSCI CPU_OFF): nothing can run any more", self.cpu.pc)
            self._idle()

    def _smp_budget(self, now: int) -> int:
        """How far the running CPU may go before the scheduler looks again: the rest of
        its quantum while another CPU can run; else up to the next deadline of a
        sleeping CPU's timers (an SGI or SPI to a sleeping CPU ends the slice at once:
        `_gic_changed`), so a CPU that runs alone is not cut into quanta for nothing."""
        best = None
        for w in self.vcpus:
            if w is self.vcpu or w.power != "on":
                continue
            if self._awake(w):
                return max(1, self._quantum_left)
            t = w.irq.timers.next_deadline()
            if t is not None:
                t = self.counter.to_icount(t) - now
                best = t if best is None or t < best else best
        return self.SLICE if best is None else max(1, best)

    @staticmethod
    def _awake(w: VCPU) -> bool:
        """Can `w` run: not asleep, or woken now by an interrupt pending for it (its
        timers brought to the machine's time first)?"""
        if w.asleep:
            w.irq.update(in_l0=True)
            if not w.irq.wake_event():
                return False
            w.asleep = False
        return True

    def _switch_to(self, w: VCPU) -> None:
        """`w` runs next, for a quantum: its counting base moves on to the machine's
        clock, its TLB forgets what other CPUs' broadcast maintenance would have
        removed, the code other CPUs changed (their IC maintenance) is dropped, and a
        CPU_ON takes effect."""
        self._quantum_left = self.quantum
        if w is self.vcpu and w.start is None:
            return
        self.catch_up(w)
        self.run_on(w)
        c = w.cpu
        c.flush_tlb()
        if w.start is not None:
            self._power_on(w)
        if w.ic_pending:
            self._apply_ic(w)
        w.irq.touch()                           # its clock ticks before it runs

    def catch_up(self, w: VCPU) -> None:
        """`w`'s counting base moves on to the machine's clock (the current CPU's: the
        one that ran last, or one already caught up), its own count unchanged: done
        before it runs, and before the debuggers show it."""
        c = w.cpu
        d = self.cpu.icount() - c.base_icount
        c.base_icount += d
        c.skew += d

    def _power_on(self, w: VCPU) -> None:
        """PSCI CPU_ON: the CPU starts at the entry point with the context id in x0, with
        DAIF masked and its MMU off, at the highest EL the guest has (as QEMU's PSCI):
        EL1h in vm mode (SCTLR_EL1 as at reset), vEL2 (EL2h) in the nested modes, with
        vEL2's registers as at reset."""
        entry, ctx = w.start
        w.start = None
        cpu = w.cpu
        w.started_at = cpu.icount()
        if w.vel2 is not None:
            w.vel2.reset()
        else:
            cpu.write_sysreg("SCTLR_EL1", self._sctlr_reset)
            cpu.set_pstate(0x3C5)
        cpu.pc = entry
        cpu.set_x(0, ctx)
        self.regime_changed()

    def ic_broadcast(self, pa: int | None, va: int | None, size: int) -> None:
        """Instruction-cache maintenance by the running CPU reaches the others (the
        inner shareable domain): applied when each runs next.  pa/va None: all."""
        for w in self.vcpus:
            if w is not self.vcpu and w.ic_pending != [None]:
                if pa is None or len(w.ic_pending) >= 64:
                    w.ic_pending = [None]       # everything (as _apply_ic would do anyway)
                else:
                    w.ic_pending.append((pa, va, size))

    def _apply_ic(self, w: VCPU) -> None:
        todo, w.ic_pending = w.ic_pending, []
        cpu = w.cpu
        if None in todo:
            cpu.uc.ctl_flush_tb()
            self.fp.code_changed()
            self.align.code_changed()
            if w.fast is not None:
                w.fast.code_changed()
            w.erets.scan(RAM_BASE, self.ram_size)
            return
        for pa, va, size in todo:
            if not cpu.drop_code_phys(pa, (pa & ~0xFFF) + 0x1000):     # to the end of its page, as _drop_translations
                cpu.uc.ctl_flush_tb()
            if va is not None:
                self.fp.code_changed(va, va + size)
                self.align.code_changed(va, va + size)
                if w.fast is not None:
                    w.fast.code_changed(va, va + size)
            w.erets.scan(pa, size)

    def _idle(self) -> None:
        """Every CPU that is on sleeps in WFI: the system counter skips to the next
        deadline of any CPU's timers or of the board's devices, taking UART input as a
        wake-up source (as Interrupts.wfi does for one CPU)."""
        board = self.device_clock
        ds = [w.irq.timers.next_deadline() for w in self.vcpus if w.power == "on"]
        b = board.next_deadline()
        d = min((t for t in ds + [b] if t is not None), default=None)
        if self.input_at_wfi(d, self.cpu.pc):
            return
        if d is None:
            raise Wedged("every CPU waits in WFI with no interrupt that can ever wake it", self.cpu.pc)
        self.counter.skip_to(d)
        if b is not None:
            board.tick()

    def input_at_wfi(self, deadline: int | None, pc: int) -> bool:
        """While every CPU waits in WFI: UART input is a wake-up source.  A file's next
        characters arrive now; a live source (stdin) is waited for in host time until
        the counter's `deadline` (for ever without one), bounded by --timeout (then the
        run stops).  True: input arrived."""
        uart = self.uart
        if not uart.wants_input():
            return False
        wait = None if deadline is None else max(0.0, (deadline - self.counter.now()) / CNTFRQ)
        left = self.host_time_left()
        if left is not None and (wait is None or wait > left):
            wait = max(0.0, left)
        self.waiting_on_host = True             # (a SIGINT may end the wait: _on_sigint)
        try:
            received = uart.receive_at_wfi(wait)
        finally:
            self.waiting_on_host = False
        if not received and left is not None and self.host_time_left() <= 0:
            self.stop("timeout", 124, f"timeout of {self.timeout}s reached at PC {self.where(pc)}")
        return received

    def page_counts(self) -> tuple[int, int]:
        """vEL2 accesses made so far without a trap: (page accesses, redirects)."""
        mem = red = 0
        for v in self.vcpus:
            if v.vel2 is not None:
                mem, red = mem + v.vel2.page_counts[0], red + v.vel2.page_counts[1]
        return mem, red

    def regime_changed(self, sctlr_el1: int | None = None, cpacr_el1: int | None = None) -> None:
        """SCTLR_EL1, CPACR_EL1, a world switch, vEL2's own regime: what neve checks
        beside Unicorn (Device alignment, FP access traps) follows.  A caller that has
        just written SCTLR_EL1 / CPACR_EL1 into the CPU (a world switch) gives their
        values, which are then not read back."""
        self.align.sync(sctlr_el1)
        self.fp.sync(cpacr_el1)
