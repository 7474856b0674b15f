"""Arm PrimeCell UART (PL011): transmit, the receive FIFO, the interrupts, loopback.

Registers and bits are the PL011 TRM's (DDI 0183); where the TRM leaves the model a
choice, or QEMU 10's `hw/char/pl011.c` (the ground truth of the differential tests)
differs from it, neve does what QEMU does, as measured on QEMU 10.0:

- Transmit is instantaneous: FR.TXFE stays set, TXFF and BUSY clear.  Every byte
  written to DR raises RIS.TX (TXRIS), which stays set until the guest clears it in
  ICR (QEMU does not model the transmit FIFO level).
- The receive FIFO holds 16 characters with LCR_H.FEN set, 1 with it clear; changing
  FEN empties it.  A character is 8 data bits plus, in bits 8-11, its error flags
  (neve only produces BE, bit 10, for a break).  Reading DR pops the oldest; reading
  it while the FIFO is empty returns the entry at the read position again (stale
  data, QEMU's ring).  RSR reads the error bits of the last character read; a write
  to ECR clears them.  FR.RXFE/RXFF follow the FIFO (RXFF is set when a character
  fills it and cleared by a DR read).
- RIS.RX is raised when the FIFO goes from empty to one character and lowered when a
  read empties it, whatever IFLS says (QEMU's read trigger is fixed at 1 because
  Linux reads the FIFO only on an interrupt; IFLS is stored and read back).  The
  receive-timeout interrupt (RTRIS) is never raised, as on QEMU: with the trigger at
  one character nothing can be left waiting below it.
- Loopback (CR.LBE): bytes written to DR are also received (the FIFO is not checked
  for room, as on QEMU: a sixteenth-plus character overwrites the oldest, no overrun
  error); a break (LCR_H.BRK set) is received as BE; FR.RI/DCD/CTS/DSR and their
  modem interrupts follow CR.OUT2/OUT1/RTS/DTR.  The input source is not read while
  LBE is set (on hardware and QEMU it is cut off and its characters lost; neve keeps
  them for later).
- The interrupt output (UARTINTR) is RIS & IMSC != 0, a level on GIC SPI 1 (INTID
  33) of the `virt` board.

Input.  Characters come from a `UartInput` (neve/devices/uart_input.py) at points the
guest causes, never behind its back: when it reads FR or DR and finds the FIFO
empty, the UART takes as many characters as the FIFO holds from what the source has
(a file: all of it; stdin: what the host has received); and when the CPU waits in WFI
with RXIM set and the FIFO empty (`wants_input`, `receive_at_wfi`, called by the WFI
handling in neve/gic/delivery.py).  As on QEMU, input is never lost to an overrun:
it waits in the source until the FIFO has room.  The RX enable bits (CR.UARTEN,
RXE) are not enforced, as on QEMU.
"""
from __future__ import annotations

from typing import Callable

from neve.devices import Device

FIFO_DEPTH = 16                      # QEMU's PL011_FIFO_DEPTH, the TRM's 16 entries

# Flag register (FR) bits.
FR_CTS = 1 << 0
FR_DSR = 1 << 1
FR_DCD = 1 << 2
FR_BUSY = 1 << 3
FR_RXFE = 1 << 4
FR_TXFF = 1 << 5
FR_RXFF = 1 << 6
FR_TXFE = 1 << 7
FR_RI = 1 << 8
FR_MODEM = FR_RI | FR_DCD | FR_DSR | FR_CTS

# Interrupt bits (IMSC, RIS, MIS, ICR).
INT_RI = 1 << 0
INT_CTS = 1 << 1
INT_DCD = 1 << 2
INT_DSR = 1 << 3
INT_RX = 1 << 4
INT_TX = 1 << 5
INT_RT = 1 << 6
INT_FE = 1 << 7
INT_PE = 1 << 8
INT_BE = 1 << 9
INT_OE = 1 << 10
INT_MODEM = INT_RI | INT_CTS | INT_DCD | INT_DSR

DR_BE = 1 << 10                      # break error flag of a received character

LCR_BRK = 1 << 0
LCR_FEN = 1 << 4

CR_LBE = 1 << 7
CR_DTR = 1 << 10
CR_RTS = 1 << 11
CR_OUT1 = 1 << 12
CR_OUT2 = 1 << 13

# Registers stored as written, with the bits QEMU keeps.
_WRITABLE = {0x20: 0xFFFF_FFFF, 0x24: 0xFFFF, 0x28: 0x3F, 0x34: 0xFFFF_FFFF, 0x48: 0xFFFF_FFFF}   # ILPR IBRD FBRD IFLS DMACR

_ID = {0xFE0: 0x11, 0xFE4: 0x10, 0xFE8: 0x14, 0xFEC: 0x00, 0xFF0: 0x0D, 0xFF4: 0xF0, 0xFF8: 0x05, 0xFFC: 0xB1}


class PL011(Device):
    name = "UART"
    registers = {0x00: "DR", 0x04: "RSR", 0x18: "FR", 0x20: "ILPR", 0x24: "IBRD", 0x28: "FBRD",
                 0x2C: "LCR_H", 0x30: "CR", 0x34: "IFLS", 0x38: "IMSC", 0x3C: "RIS", 0x40: "MIS",
                 0x44: "ICR", 0x48: "DMACR", **{o: "ID" for o in _ID}}

    def __init__(self, base: int, out: Callable[[bytes], None], source=None,
                 irq: Callable[[bool], None] | None = None) -> None:
        self.base = base
        self.out = out
        self.source = source                 # a UartInput, or None: nothing is ever received
        self.irq = irq                       # drives the interrupt line (RIS & IMSC != 0)
        self.line = False
        self.regs = {0x20: 0, 0x24: 0, 0x28: 0, 0x34: 0x12, 0x48: 0}
        self.lcr = 0
        self.cr = 0x300                      # TXE | RXE
        self.imsc = 0
        self.ris = 0
        self.rsr = 0
        self.flags = FR_RXFE | FR_TXFE
        self.fifo = [0] * FIFO_DEPTH
        self.rpos = 0
        self.count = 0
        self.trigger = 1                     # QEMU's read trigger (see the module docstring)

    # --- the interrupt line ---------------------------------------------------------
    def _update(self) -> None:
        level = bool(self.ris & self.imsc)
        if level != self.line:
            self.line = level
            if self.irq is not None:
                self.irq(level)

    # --- the receive FIFO -----------------------------------------------------------
    def depth(self) -> int:
        return FIFO_DEPTH if self.lcr & LCR_FEN else 1

    def _rx_put(self, value: int) -> None:
        depth = self.depth()
        self.fifo[(self.rpos + self.count) & (depth - 1)] = value
        self.count += 1
        self.flags &= ~FR_RXFE
        if self.count == depth:
            self.flags |= FR_RXFF
        if self.count == self.trigger:
            self.ris |= INT_RX
            self._update()

    def _rx_get(self) -> int:
        if self.count == 0:
            self._receive()
        self.flags &= ~FR_RXFF
        c = self.fifo[self.rpos]
        if self.count > 0:
            self.count -= 1
            self.rpos = (self.rpos + 1) & (self.depth() - 1)
        if self.count == 0:
            self.flags |= FR_RXFE
        if self.count == self.trigger - 1:
            self.ris &= ~INT_RX
        self.rsr = c >> 8
        self._update()
        return c

    def _reset_rx(self) -> None:
        self.count = 0
        self.rpos = 0
        self.flags = (self.flags & ~FR_RXFF) | FR_RXFE

    def _receive(self) -> int:
        """Take what the source has, as far as the FIFO has room; the number taken."""
        src = self.source
        if src is None or self.cr & CR_LBE:
            return 0
        room = self.depth() - self.count
        if room <= 0:
            return 0
        got = src.take(room)
        for c in got:
            self._rx_put(c)
        return len(got)

    # --- WFI (neve/gic/delivery.py) ------------------------------------------------------
    def wants_input(self) -> bool:
        """Would a received character raise the interrupt a WFI waits for: RXIM set,
        the FIFO empty, and the source not at its end."""
        return (self.source is not None and self.imsc & INT_RX and self.count == 0
                and not self.cr & CR_LBE and not self.source.exhausted)

    def receive_at_wfi(self, timeout: float | None) -> bool:
        """The CPU waits: a file delivers its next characters now; a live source is
        waited for up to `timeout` seconds of host time (None: until input arrives or
        ends).  True if characters were received."""
        if self._receive():
            return True
        if self.source.live and self.source.wait(timeout):
            return self._receive() > 0
        return False

    # --- registers ------------------------------------------------------------------
    # The registers are 32-bit and, as on QEMU, so is every access: a 64-bit access
    # is two of them, a narrower one reaches the register its address falls in.
    def read(self, off: int, size: int) -> int:
        if size == 8:
            return self._read32(off) | self._read32(off + 4) << 32
        return self._read32(off) & ((1 << (8 * size)) - 1)

    def write(self, off: int, size: int, value: int) -> None:
        if size == 8:
            self._write32(off, value & 0xFFFF_FFFF)
            self._write32(off + 4, value >> 32)
        else:
            self._write32(off, value & ((1 << (8 * size)) - 1))

    def _read32(self, off: int) -> int:
        reg = off & ~3
        if reg == 0x00:
            return self._rx_get()
        if reg == 0x04:
            return self.rsr
        if reg == 0x18:
            if self.count == 0:
                self._receive()
            return self.flags
        if reg == 0x2C:
            return self.lcr
        if reg == 0x30:
            return self.cr
        if reg == 0x38:
            return self.imsc
        if reg == 0x3C:
            return self.ris
        if reg == 0x40:
            return self.ris & self.imsc
        if reg in _ID:
            return _ID[reg]
        return self.regs.get(reg, 0)

    def _write32(self, off: int, value: int) -> None:
        reg = off & ~3
        if reg == 0x00:
            ch = value & 0xFF
            self.out(bytes((ch,)))
            if self.cr & CR_LBE:
                self._rx_put(ch)
            self.ris |= INT_TX                   # the byte left at once: TX interrupt raised
            self._update()
        elif reg == 0x04:                        # ECR: clear the error flags
            self.rsr = 0
        elif reg == 0x2C:
            if (self.lcr ^ value) & LCR_FEN:
                self._reset_rx()
            if (self.lcr ^ value) & LCR_BRK and value & LCR_BRK and self.cr & CR_LBE:
                self._rx_put(DR_BE)              # a break looped back
            self.lcr = value
        elif reg == 0x30:
            self.cr = value
            self._loopback_modem()
        elif reg == 0x38:
            self.imsc = value
            self._update()
        elif reg == 0x44:
            self.ris &= ~value
            self._update()
        elif reg in _WRITABLE:
            self.regs[reg] = value & _WRITABLE[reg]

    def _loopback_modem(self) -> None:
        """In loopback the modem outputs drive the modem inputs: FR.RI = CR.OUT2,
        FR.DCD = CR.OUT1, FR.CTS = CR.RTS, FR.DSR = CR.DTR, each with its raw
        interrupt (as QEMU; outside loopback the inputs keep their last state)."""
        if not self.cr & CR_LBE:
            return
        cr = self.cr
        fr = self.flags & ~FR_MODEM
        fr |= (FR_RI if cr & CR_OUT2 else 0) | (FR_DCD if cr & CR_OUT1 else 0)
        fr |= (FR_CTS if cr & CR_RTS else 0) | (FR_DSR if cr & CR_DTR else 0)
        il = self.ris & ~INT_MODEM
        il |= (INT_DSR if fr & FR_DSR else 0) | (INT_DCD if fr & FR_DCD else 0)
        il |= (INT_CTS if fr & FR_CTS else 0) | (INT_RI if fr & FR_RI else 0)
        self.flags = fr
        self.ris = il
        self._update()

    def state(self) -> dict:
        return {"regs": dict(self.regs), "lcr": self.lcr, "cr": self.cr, "imsc": self.imsc, "ris": self.ris,
                "rsr": self.rsr, "flags": self.flags,
                "rx": [self.fifo[(self.rpos + i) & (self.depth() - 1)] for i in range(min(self.count, self.depth()))]}
