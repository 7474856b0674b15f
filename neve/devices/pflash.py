"""The `virt` board's CFI flash: two banks of 64 MiB at 0 and 0x0400_0000, each as
QEMU's pflash_cfi01 configures it there (hw/arm/virt.c, hw/block/pflash_cfi01.c):
Intel/Sharp command set, a 4-byte bank of two x16 devices (device-width 2), 256 KiB
sectors, manufacturer 0x89 and device 0x18, the CFI query table QEMU builds.

Commands (written as the low byte of any write; U-Boot writes them replicated per
device, 0x00980098): 0xFF/0x00/0xF0 read array; 0x70 read status; 0x90 read ID
(offset 0: manufacturer, 4: device, each replicated per device); 0x98 CFI query
(table byte n at offset 4n, replicated); 0x40/0x10 word program (the next write is
the data); 0x20 block erase (the sector is erased at once, 0xD0 confirms); 0x50 clear
status; 0x60 block (un)lock (accepted, not modelled, as QEMU); 0xE8 buffered write
(count N-1 in the device's width, N data writes into the 4 KiB write buffer, 0xD0
flushes it to the array, anything else discards it); an unknown sequence returns to
read-array mode.  The status register reads 0x80 (ready) per device after reset.

Mapping.  In read-array mode a bank is memory: guest RAM-speed reads, and code runs
from it (`--bios`).  Unicorn cannot fetch from MMIO, so a bank is mapped as
read/execute memory in read-array mode and as MMIO callbacks in the command modes;
the mapping changes between slices (CPU.between_slices: changing it inside a hook
crashes Unicorn).  A write to a bank in read-array mode is a command: Unicorn's
write-protection hook sees it, the command is executed, and the bytes the store put
into the storage are put back before the next instruction.

Storage.  A bank's contents live for the run (zero at start, as QEMU's without a
drive; bank 0 holds `bios` if given), or in a file of exactly 64 MiB given with
`--pflash FILE`, which is mapped shared: programs and erases reach the file.
"""
from __future__ import annotations

import ctypes
import mmap
import os

from unicorn import UC_HOOK_MEM_WRITE_PROT, UC_PROT_EXEC, UC_PROT_READ

from neve.devices import Device, cells
from neve.errors import BadInput

BANK_SIZE = 64 << 20
BANKS = 2
SECTOR = 256 << 10
BANK_WIDTH = 4
DEVICE_WIDTH = 2
NUM_DEVICES = BANK_WIDTH // DEVICE_WIDTH
ID0, ID1 = 0x89, 0x18
STATUS_READY = 0x80
STATUS_PROGRAM_ERROR = 0x10


def cfi_table() -> bytes:
    """The CFI query table of one device, as QEMU's pflash_cfi01 builds it."""
    t = bytearray(0x40)
    blocks = BANK_SIZE // SECTOR                      # blocks per device (one sector spans the devices)
    sector_per_device = SECTOR // NUM_DEVICES
    t[0x10:0x13] = b"QRY"
    t[0x13], t[0x14] = 0x01, 0x00                     # Intel command set
    t[0x15], t[0x16] = 0x31, 0x00                     # primary extended table at 0x31
    t[0x1B], t[0x1C] = 0x45, 0x55                     # Vcc min, max
    t[0x1F], t[0x20], t[0x21], t[0x22] = 0x07, 0x07, 0x0A, 0x00    # typical timeouts
    t[0x23], t[0x24], t[0x25], t[0x26] = 0x04, 0x04, 0x04, 0x00    # maximum timeouts
    t[0x27] = (BANK_SIZE // NUM_DEVICES).bit_length() - 1           # device size, log2
    t[0x28], t[0x29] = 0x02, 0x00                     # x8/x16 interface
    t[0x2A], t[0x2B] = 0x0B, 0x00                     # write buffer: 2 KiB per device
    t[0x2C] = 0x01                                    # one erase block region
    t[0x2D], t[0x2E] = (blocks - 1) & 0xFF, (blocks - 1) >> 8
    t[0x2F], t[0x30] = (sector_per_device >> 8) & 0xFF, sector_per_device >> 16
    t[0x31:0x36] = b"PRI10"
    t[0x3F] = 0x01                                    # protection fields
    return bytes(t)


CFI = cfi_table()
WRITEBLOCK = (1 << CFI[0x2A]) * NUM_DEVICES          # the write buffer of the bank: 4 KiB


def _replicate(v: int) -> int:
    """A device's 16-bit answer, from each device of the bank."""
    for i in range(DEVICE_WIDTH, BANK_WIDTH, DEVICE_WIDTH):
        v |= (v & ((1 << 8 * DEVICE_WIDTH) - 1)) << 8 * i
    return v


class Bank:
    """One pflash_cfi01: its command state machine over its storage."""

    def __init__(self, index: int, base: int, storage) -> None:
        self.index, self.base, self.storage = index, base, storage
        self.wcycle = 0
        self.cmd = 0x00             # QEMU's value for read array
        self.status = STATUS_READY
        self.counter = 0
        self.romd = True            # read-array mode: the bank is mapped as memory
        self.blk_offset: int | None = None
        self.blk = bytearray()
        self.dirty = False          # the array changed while mapped as MMIO

    def _read_array(self) -> None:
        self.romd = True
        self.wcycle = 0
        self.cmd = 0x00

    def read(self, off: int, size: int) -> int:
        if size == 8:
            return self.read(off, 4) | self.read(off + 4, 4) << 32
        mask = (1 << 8 * size) - 1
        cmd = self.cmd
        if cmd in (0x10, 0x20, 0x28, 0x40, 0x50, 0x60, 0x70, 0xE8):
            v = self.status
            if size > DEVICE_WIDTH:
                v = _replicate(v)
            return v & mask
        if cmd == 0x90:
            boff = (off >> 2) & 0xFF
            v = ID0 if boff == 0 else ID1 if boff == 1 else None
            return 0 if v is None else _replicate(v) & mask
        if cmd == 0x98:
            boff = off >> 2
            return (_replicate(CFI[boff]) & mask) if boff < len(CFI) else 0
        if cmd != 0x00:
            self.wcycle, self.cmd = 0, 0x00
        return int.from_bytes(self.storage[off:off + size], "little")

    def _data_write(self, off: int, size: int, value: int) -> None:
        data = (value & ((1 << 8 * size) - 1)).to_bytes(size, "little")
        if self.blk_offset is not None:
            if off < self.blk_offset or off + size > self.blk_offset + WRITEBLOCK:
                self.status |= STATUS_PROGRAM_ERROR
                return
            o = off - self.blk_offset
            self.blk[o:o + size] = data
        else:
            self.storage[off:off + size] = data
            self.dirty = True

    def write(self, off: int, size: int, value: int) -> None:
        if size == 8:
            self.write(off, 4, value & 0xFFFF_FFFF)
            self.write(off + 4, 4, value >> 32)
            return
        cmd = value & 0xFF
        if self.wcycle == 0:
            self.romd = False
        if self.wcycle == 0:
            if cmd in (0x00, 0xF0, 0xFF):
                return self._read_array()
            if cmd == 0x50:
                self.status = 0
                return self._read_array()
            if cmd in (0x70, 0x90):
                self.cmd = cmd
                return
            if cmd == 0x20:
                start = off & ~(SECTOR - 1)
                self.storage[start:start + SECTOR] = b"\xff" * SECTOR
                self.dirty = True
                self.status |= STATUS_READY
            elif cmd == 0xE8:
                self.status |= STATUS_READY
            elif cmd not in (0x10, 0x40, 0x60, 0x98):
                return self._read_array()       # QEMU: "Unimplemented flash cmd sequence"
            self.wcycle, self.cmd = 1, cmd
        elif self.wcycle == 1:
            c = self.cmd
            if c in (0x10, 0x40):
                self._data_write(off, size, value)
                self.status |= STATUS_READY
                self.wcycle = 0
            elif c in (0x20, 0x28, 0x60):
                if cmd == 0xD0 or (c == 0x60 and cmd == 0x01):
                    self.wcycle = 0
                    self.status |= STATUS_READY
                else:
                    return self._read_array()
            elif c == 0xE8:
                self.counter = value & ((1 << 8 * DEVICE_WIDTH) - 1)
                self.wcycle = 2
                if self.counter:
                    # QEMU 10 opens the write buffer for a count of 2 words or more
                    # only: a single-word buffered write is a programming error
                    # (measured: SR.4 set, nothing written, the confirm is refused).
                    self.blk_offset = off & ~(WRITEBLOCK - 1)
                    self.blk = bytearray(self.storage[self.blk_offset:self.blk_offset + WRITEBLOCK])
            elif c == 0x98:
                if cmd == 0xFF:
                    return self._read_array()
            else:
                return self._read_array()
        elif self.wcycle == 2:
            if self.cmd != 0xE8:
                return self._read_array()
            if self.blk_offset is None:
                self.status |= STATUS_PROGRAM_ERROR
            else:
                self._data_write(off, size, value)
            self.status |= STATUS_READY
            if self.counter == 0:
                self.wcycle = 3
            else:
                self.counter -= 1
        else:
            if self.cmd == 0xE8 and cmd == 0xD0 and self.blk_offset is not None:
                o = self.blk_offset
                self.storage[o:o + WRITEBLOCK] = self.blk
                self.dirty = True
                self.blk_offset = None
                self.wcycle = 0
                self.status |= STATUS_READY
            else:
                self.blk_offset = None
                return self._read_array()

    def state(self) -> dict:
        return {"wcycle": self.wcycle, "cmd": self.cmd, "status": self.status, "romd": self.romd}


def _storage(path: str | None, contents: bytes | None, what: str):
    if path is None:
        buf = mmap.mmap(-1, BANK_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if contents:
            buf[:len(contents)] = contents
        return buf
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as e:
        raise BadInput(f"--pflash {path}: {e.strerror}") from None
    try:
        size = os.fstat(fd).st_size
        if size != BANK_SIZE:
            raise BadInput(f"--pflash {path}: {what} requires {BANK_SIZE} bytes (64 MiB), the file has {size}")
        return mmap.mmap(fd, BANK_SIZE, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


class CFIFlash(Device):
    """The two flash banks, one device of the board (one `flash@0` node, as QEMU's)."""
    name = "flash"
    base = 0
    size = BANKS * BANK_SIZE

    def __init__(self, base: int = 0, bios: bytes | None = None, files: tuple = (None, None)) -> None:
        self.base = base
        if bios is not None and len(bios) > BANK_SIZE:
            raise BadInput(f"--bios: {len(bios)} bytes do not fit the 64 MiB flash bank 0")
        files = tuple(files) + (None,) * (BANKS - len(files))
        if bios is not None and files[0] is not None:
            raise BadInput("flash bank 0 holds either the --bios image or a --pflash file, not both")
        self.banks = [Bank(i, base + i * BANK_SIZE,
                           _storage(files[i], bios if i == 0 else None, f"flash bank {i}")) for i in range(BANKS)]
        self._cpus: list = []       # (cpu, rd, wr) of every CPU the banks are mapped into
        self._hooks: list = []

    @classmethod
    def create(cls, m, row):
        return cls(row.base, getattr(m, "bios", None), getattr(m, "pflash", (None, None)) or (None, None))

    def executable(self, pa: int) -> bool:
        """Is the bank at `pa` mapped as memory (read-array mode)?"""
        return self.banks[(pa - self.base) // BANK_SIZE].romd

    def reg_name(self, off: int) -> str:
        return f"flash{off // BANK_SIZE}+{off % BANK_SIZE:#x}"

    def read(self, off: int, size: int) -> int:
        return self.banks[off // BANK_SIZE].read(off % BANK_SIZE, size)

    def write(self, off: int, size: int, value: int) -> None:
        b = self.banks[off // BANK_SIZE]
        was = b.romd
        b.write(off % BANK_SIZE, size, value)
        if b.romd != was:
            for cpu, _, _ in self._cpus:
                cpu.between_slices(lambda cpu=cpu, b=b: self._remap(cpu, b))

    # --- mapping ---------------------------------------------------------------------------
    def attach(self, cpu, rd, wr) -> None:
        """Map the banks into `cpu` (Machine._map_device): `rd`/`wr` are the machine's MMIO
        callbacks for this device (offsets from its base)."""
        self._cpus.append((cpu, rd, wr))
        for b in self.banks:
            self._map(cpu, b, rd, wr)
        cpu.flush_tlb()                 # a translation of the range made before (none) must go

        def write_prot(uc, access, addr, size, value, _):
            off = addr - self.base
            if not 0 <= off < self.size:
                return False
            b = self.banks[off // BANK_SIZE]
            o = off % BANK_SIZE
            wr(uc, off, size, value, None)              # the command (counted as an MMIO access)
            keep = bytes(b.storage[o:o + size])         # the array as the command left it (an erase...)

            def restore() -> None:
                b.storage[o:o + size] = keep
                uc.ctl_remove_cache(addr, addr + size)
            cpu.between_slices(restore)                 # ... and not the store into it
            return True
        self._hooks.append(cpu.uc.hook_add(UC_HOOK_MEM_WRITE_PROT, write_prot, None,
                                           self.base, self.base + self.size - 1))

    def _map(self, cpu, b: Bank, rd, wr) -> None:
        if b.romd:
            ptr = ctypes.addressof(ctypes.c_char.from_buffer(b.storage))
            cpu.uc.mem_map_ptr(b.base, BANK_SIZE, UC_PROT_READ | UC_PROT_EXEC, ptr)
        else:
            delta = b.base - self.base
            cpu.uc.mmio_map(b.base, BANK_SIZE, lambda uc, o, s, ud: rd(uc, o + delta, s, ud), None,
                            lambda uc, o, s, v, ud: wr(uc, o + delta, s, v, ud), None)

    def _remap(self, cpu, b: Bank) -> None:
        for c, rd, wr in self._cpus:
            if c is cpu:
                cpu.uc.mem_unmap(b.base, BANK_SIZE)
                self._map(cpu, b, rd, wr)
                cpu.flush_tlb()
                if b.romd and b.dirty:
                    cpu.uc.ctl_remove_cache(b.base, b.base + BANK_SIZE)
        if b.romd and cpu is self._cpus[-1][0]:
            b.dirty = False

    def state(self) -> dict:
        return {f"bank{b.index}": b.state() for b in self.banks}

    def describe(self, sw, phandles) -> None:
        with sw.add_node(f"flash@{self.base:x}"):
            sw.property("bank-width", cells(BANK_WIDTH))
            sw.property("reg", b"".join(cells(0, b.base, 0, BANK_SIZE) for b in self.banks))
            sw.property_string("compatible", "cfi-flash")
