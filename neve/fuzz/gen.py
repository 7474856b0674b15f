"""Random fuzz cases from a seed.

`generate(seed)` builds a `Case` (neve/fuzz/case.py) with `random.Random(seed)` and
nothing else, so a seed reproduces a case exactly (for one version of this file).

What a case does:
* region A, where the image starts (EL1 in vm mode, EL2 for a guest hypervisor):
  random steps drawn from the register table and the SYS encodings, exception
  instructions, ERETs with random SPSR/ELR, loads and stores to RAM, devices,
  holes and beyond the physical address range, WFE/WFI, FP, PSTATE writes and
  random instruction words;
* its epilogue (EL2 only): the nested VM's configuration, as a guest hypervisor
  would write it: HCR_EL2 with random trap bits, CPTR/MDCR/CNTHCTL_EL2, VPIDR/
  VMPIDR_EL2, the GIC list registers, a random stage 2 (VTTBR/VTCR and tables in
  the case) and sometimes a stage 1 for the nested VM;
* region B, the nested VM (or, in vm mode, more EL1 code): random steps at EL1 or
  EL0.

A step's printed value must be the same on every faithful run: reads of the
counters and of timer status bits are masked or not shown (and a value not shown is
cleared from x0 before the next slot, which may use x0 as an address), and the
counter frequency (CNTFRQ_EL0, a documented model difference) is not shown.
"""
from __future__ import annotations

import random
import struct

from neve.arch import decode, sysregs
from neve.fuzz import a64
from neve.fuzz.case import DATA_PAGES, POOL_PAGES, Case, Layout, Slot, template

PSCI = {"VERSION": 0x84000000, "FEATURES": 0x8400000A, "MIGRATE_INFO_TYPE": 0x84000006,
        "SMCCC_VERSION": 0x80000000}
UART = 0x0900_0000
GICD, GICR = 0x0800_0000, 0x080A_0000

# Registers whose value is not the same on two faithful runs: never shown.
NOT_SHOWN = {"CNTPCT_EL0", "CNTVCT_EL0", "CNTP_TVAL_EL0", "CNTV_TVAL_EL0", "CNTHP_TVAL_EL2", "CNTHV_TVAL_EL2",
             "PMCCNTR_EL0", "PMXEVCNTR_EL0", "CNTFRQ_EL0", "CNTP_TVAL_EL02", "CNTV_TVAL_EL02"}
NOT_SHOWN_KEYS = {(3, 3, 14, 0, 5), (3, 3, 14, 0, 6)}          # CNTPCTSS_EL0, CNTVCTSS_EL0
# Timer control registers: ISTATUS (bit 2) depends on the count; show ENABLE and IMASK.
MASK_CTL = {"CNTP_CTL_EL0", "CNTV_CTL_EL0", "CNTHP_CTL_EL2", "CNTHV_CTL_EL2", "CNTP_CTL_EL02", "CNTV_CTL_EL02"}

# Registers a random write would take the harness away with (its vectors, its MMU,
# its stack-free flow): written only with the values below.
_SCTLR_BENIGN = (1 << 1) | (1 << 3) | (1 << 4) | (1 << 2) | (1 << 12) | (1 << 14) | (1 << 15) | (1 << 26) | (1 << 16) | (1 << 18)
HCR = {n: 1 << b for n, b in sysregs.CTRL_BITS["HCR_EL2"].items()}

_ROWS = [r for r in sysregs.REGISTERS]
_BY_GROUP: dict[str, list] = {}
for _r in _ROWS:
    _BY_GROUP.setdefault(_r.group, []).append(_r)

_SYS = sorted(decode.SYS_NAMES.items())      # ((op1, crn, crm, op2), name)


def _mask64(v: int) -> int:
    return v & (2**64 - 1)


def set_reg(name: str, v: int) -> Slot:
    """A slot writing `v` to a register of the table, then ISB."""
    key = sysregs.BY_NAME[name].key
    return Slot(a64.mov_imm(1, v) + [a64.msr(key, 1), a64.ISB], note=f"msr {name}, {v:#x}")


def read_reg(name: str) -> Slot:
    """A slot reading a register of the table into x0, shown."""
    return Slot([a64.mrs(0, sysregs.BY_NAME[name].key)], show=True, note=f"mrs x0, {name}")


class Gen:
    def __init__(self, seed: int, lay: Layout) -> None:
        self.seed = seed
        self.r = random.Random(seed)
        self.lay = lay
        self.case = Case(seed=seed)
        self.pool_next = 0
        self.l2_mmu = False
        self.tainted: set[str] = set()        # registers whose value now depends on time

    # --- small helpers ----------------------------------------------------------------
    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def value(self) -> int:
        r = self.r
        k = r.random()
        if k < 0.15:
            return 0
        if k < 0.25:
            return 2**64 - 1
        if k < 0.55:
            return sum(1 << r.randrange(64) for _ in range(r.randint(1, 4)))
        if k < 0.75:
            return r.getrandbits(32)
        return r.getrandbits(64)

    def data_addr(self, align: int = 8, unaligned: float = 0.15) -> int:
        a = self.lay.data + self.r.randrange(DATA_PAGES * 0x1000 - 64)
        if self.chance(unaligned):
            return a
        return a & ~(align - 1)

    def addr(self, size: int) -> tuple[int, str]:
        """An address for a load or store, and what it is."""
        r = self.r
        k = r.random()
        if k < 0.55:
            return self.data_addr(size), "data"
        if k < 0.65:
            return UART + r.choice([0x0, 0x18, 0x30, 0x24, 0x2C, 0x38, 0xFE0, 0xFF0]), "uart"
        if k < 0.72:
            return GICD + r.choice([0x0, 0x4, 0x8, 0x100, 0x180, 0x400, 0xFFE8]), "gicd"
        if k < 0.76:
            return GICR + r.choice([0x0, 0x8, 0x14, 0x10000 + 0x100, 0x10000 + 0x400]), "gicr"
        if k < 0.84:
            return r.choice([0x0900_1000, 0x0A00_4000, 0x0E00_0000, 0x4800_0000 + r.randrange(1 << 20),
                             0x8000_0000, 0x1_0000_0000]) & ~(size - 1), "hole"
        if k < 0.90:
            return (1 << r.randrange(44, 64)) | r.randrange(1 << 12) & ~(size - 1), "high"
        return r.getrandbits(64), "random"

    # --- steps ------------------------------------------------------------------------
    def slot_read(self, key: tuple, name: str) -> Slot:
        words = [a64.mrs(0, key)]
        show = name not in NOT_SHOWN and key not in NOT_SHOWN_KEYS and name not in self.tainted
        if name in MASK_CTL:
            words.append(0x92400400)                 # and x0, x0, #3
        if not show:
            words.append(a64.movz(0, 0))             # the value must not reach a later slot's address
        return Slot(words, show=show, note=f"mrs x0, {name}")

    def write_value(self, row) -> int | None:
        """The value a random MSR writes, or None if this register is left alone."""
        name = row.name
        r = self.r
        if name in ("VBAR_EL1", "VBAR_EL2", "VBAR_EL12"):
            return None
        if name.startswith("SCTLR_"):
            reset = 0x30C50830 if name == "SCTLR_EL2" else 0x00C50838
            return (reset ^ (r.getrandbits(32) & _SCTLR_BENIGN)) & ~1
        if name in ("SPSel", "DAIF"):
            return r.choice([0, 1]) if name == "SPSel" else r.choice([0x3C0, 0x3C0, 0x300, 0x0])
        if name == "HCR_EL2":
            return self.hcr_value()
        if name == "CPTR_EL2" and self.chance(0.5):
            return 0x33FF | (1 << 10 if self.chance(0.3) else 0)
        return self.value()

    def pick_row(self, el: int):
        r = self.r
        groups = {"el1": 14, "el0": 3, "special": 4, "timer": 8, "gic": 8, "pmu": 8, "debug": 5, "id": 8,
                  "el2": 14 if el == 2 else 4, "el12": 3}
        g = r.choices(list(groups), weights=list(groups.values()))[0]
        return r.choice(_BY_GROUP[g])

    def random_key(self) -> tuple:
        r = self.r
        if self.chance(0.3):        # the IMPLEMENTATION DEFINED space (HCR_EL2.TIDCP)
            return (3, r.randrange(8), r.choice([11, 15]), r.randrange(16), r.randrange(8))
        return (r.choice([2, 3, 3, 3]), r.randrange(8), r.randrange(16), r.randrange(16), r.randrange(8))

    def step_sysreg(self, el: int) -> Slot:
        if self.chance(0.08):
            key = self.random_key()
            row = sysregs.BY_KEY.get(key)
            name = row.name if row else sysregs.enc_name(*key)
            if self.chance(0.5):
                return self.slot_read(key, name)
            v = self.value()
            return Slot(a64.mov_imm(1, v) + [a64.msr(key, 1)], note=f"msr {name}, {v:#x}")
        row = self.pick_row(el)
        if row.access == "ro" or (row.access == "rw" and self.chance(0.45)):
            return self.slot_read(row.key, row.name)
        v = self.write_value(row)
        if v is None:
            return self.slot_read(row.key, row.name)
        words = a64.mov_imm(1, v) + [a64.msr(row.key, 1)]
        note = f"msr {row.name}, {v:#x}"
        if row.name.endswith("_TVAL_EL0") or row.name.endswith("_TVAL_EL2"):
            # CVAL = the count at the write + TVAL: from now on it depends on time.
            self.tainted.add(row.name.replace("_TVAL_", "_CVAL_"))
        if row.access == "rw" and self.chance(0.7):
            rd = self.slot_read(row.key, row.name)
            return Slot(words + [a64.ISB] + rd.words, show=rd.show, note=note + "; " + rd.note)
        return Slot(words, note=note)

    def step_sys(self, el: int) -> Slot:
        r = self.r
        (op1, crn, crm, op2), name = r.choice(_SYS)
        if name.startswith("AT"):
            va, _ = (self.data_addr(8, 0.1), "") if self.chance(0.7) else self.addr(8)
            words = a64.mov_imm(1, va) + [a64.sys(op1, crn, crm, op2, 1), a64.ISB,
                                           a64.mrs(0, (3, 0, 7, 4, 0))]
            return Slot(words, show=True, note=f"{name}, {va:#x}; mrs x0, PAR_EL1")
        if name.startswith("DC"):
            xt = self.data_addr(64, 0.3) if self.chance(0.7) else self.addr(8)[0]
        elif name.startswith("IC"):
            xt = self.lay.region_b if self.chance(0.5) else self.data_addr(64, 0.3)
        else:
            xt = self.value() if self.chance(0.5) else (self.data_addr(4096, 0) >> 12)
        return Slot(a64.mov_imm(1, xt) + [a64.sys(op1, crn, crm, op2, 1), a64.DSB_SY, a64.ISB],
                    note=f"{name}, {xt:#x}")

    def step_exception(self, el: int) -> Slot:
        r = self.r
        kind = r.choice(["svc", "hvc", "hvc", "smc", "smc", "brk", "hlt"])
        imm = r.getrandbits(16)
        while kind == "svc" and imm == 0xD0E or kind == "hlt" and imm == 0xF000:
            imm = r.getrandbits(16)
        words = []
        note = f"{kind} #{imm:#x}"
        if kind in ("hvc", "smc"):
            fn, fid = r.choice(list(PSCI.items()))
            arg = r.choice([PSCI["VERSION"], 0xC4000003, 0x84000008, r.getrandbits(32)])
            words += a64.mov_imm(0, fid) + a64.mov_imm(1, arg)
            note = f"x0={fn}, x1={arg:#x}; " + note
        words.append(a64.exception(kind, imm))
        return Slot(words, show=kind in ("hvc", "smc"), note=note)

    def step_eret(self, el: int) -> Slot:
        """ERET with a random SPSR; ELR is mostly the next slot."""
        r = self.r
        region = "a" if el == 2 or not self.in_b else "b"
        idx = (len(self.case.a) if region == "a" else len(self.case.b)) + 1
        nxt = self.lay.slot_addr(region, idx)
        if el == 2:
            m = r.choice([0x9, 0x9, 0x8, 0x5, 0x4, 0x0, r.randrange(16)])
        else:
            m = r.choice([0x5, 0x5, 0x4, 0x0, r.randrange(16)])
        spsr = m | r.choice([0x3C0, 0x3C0, 0x340, 0x0]) | (r.getrandbits(4) << 28)
        if self.chance(0.1):
            spsr = r.getrandbits(32)
        elr = nxt if self.chance(0.85) else nxt + 4 * r.randrange(-2, 3)
        spsr_key, elr_key = ((3, 4, 4, 0, 0), (3, 4, 4, 0, 1)) if el == 2 else ((3, 0, 4, 0, 0), (3, 0, 4, 0, 1))
        words = a64.mov_imm(1, spsr) + a64.mov_imm(2, elr) + [a64.msr(spsr_key, 1), a64.msr(elr_key, 2), a64.ERET]
        return Slot(words, note=f"eret to SPSR {spsr:#x}, ELR {elr:#x}")

    def step_ldst(self, el: int) -> Slot:
        r = self.r
        form = r.choice(["ldr", "ldr", "str", "str", "ldur", "stur", "ldp", "stp", "ldxr", "stxr", "ldar",
                         "stlr", "ldapr", "ldadd", "simd"])
        size = r.choice([1, 2, 4, 8])
        if form in ("ldp", "stp"):
            size = 8
        addr, what = self.addr(size)
        words = a64.mov_imm(1, addr) + a64.mov_imm(2, self.value())
        if form in ("ldr", "str"):
            words.append(a64.ldst_uimm(form == "ldr", size, 0 if form == "ldr" else 2, 1))
        elif form in ("ldur", "stur"):
            off = r.randrange(-8, 8)
            words.append(a64.ldst_unscaled(form == "ldur", size, 0 if form == "ldur" else 2, 1, off))
            addr = _mask64(addr + off)                # the note gives the address accessed
        elif form in ("ldp", "stp"):
            words.append(a64.ldst_pair(form == "ldp", 0 if form == "ldp" else 2, 3, 1))
        elif form in ("ldxr", "ldar"):
            words.append(a64.ldst_exclusive(form, size, 0, 1))
        elif form in ("stxr", "stlr"):
            words.append(a64.ldst_exclusive(form, size, 2, 1, 4))
        elif form == "ldapr":
            words.append(a64.ldapr(size, 0, 1))
        elif form == "ldadd":
            words.append(a64.ldadd(size, 2, 0, 1))
        else:
            load, size = self.chance(0.5), r.choice([1, 2, 4, 8, 16])
            words.append(a64.ldr_simd(load, size, 0, 1))
            form = "simd-" + ("ldr" if load else "str")
        loads = form in ("ldr", "ldur", "ldp", "ldxr", "ldar", "ldapr", "ldadd")
        if form == "stxr":
            words.append(0xAA0403E0)                 # mov x0, x4 (the status)
            loads = True
        return Slot(words, show=loads, note=f"{form} size {size} at {addr:#x} ({what})")

    def step_random_word(self, el: int) -> Slot:
        r = self.r
        while True:
            w = r.getrandbits(32)
            op0 = (w >> 25) & 0xF
            if op0 in (0b1010, 0b1011):              # branches, exception generation, system
                continue
            break
        return Slot(a64.mov_imm(1, self.data_addr(16, 0)) + [w], note=f"random word {w:#010x} "
                    f"({decode.disasm(w)})")

    def step_misc(self, el: int) -> Slot:
        r = self.r
        k = r.choice(["wfe", "wfe", "wfi", "fp", "fp", "daif", "spsel"])
        if k == "wfe":
            return Slot([a64.WFE], note="wfe")
        if k == "wfi":
            return Slot([a64.WFI], note="wfi")
        if k == "fp":
            return Slot([a64.movz(1, 7), a64.fmov_d_x(0, 1)], note="fmov d0, x1 (FP access)")
        if k == "daif":
            op2 = r.choice([6, 7])
            crm = r.randrange(16)
            return Slot([a64.msr_imm(3, op2, crm)], note=f"msr daif{'set' if op2 == 6 else 'clr'}, #{crm}")
        return Slot([a64.msr_imm(0, 5, r.randrange(2))], note="msr spsel")

    def step(self, el: int) -> Slot:
        kinds = [(self.step_sysreg, 40), (self.step_sys, 10), (self.step_exception, 8), (self.step_eret, 3),
                 (self.step_ldst, 20), (self.step_random_word, 8), (self.step_misc, 5)]
        fn = self.r.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
        return fn(el)

    # --- the nested VM's configuration (the epilogue) ---------------------------------
    def hcr_value(self) -> int:
        v = HCR["RW"] if self.chance(0.95) else 0
        for name, p in (("VM", 0.4), ("TID1", 0.1), ("TID2", 0.1), ("TID3", 0.15), ("TSC", 0.2), ("TIDCP", 0.1),
                        ("TACR", 0.15), ("TSW", 0.1), ("TPCP", 0.1), ("TPU", 0.1), ("TTLB", 0.15), ("TVM", 0.15),
                        ("TRVM", 0.15), ("TDZ", 0.1), ("TWI", 0.1), ("TWE", 0.1), ("IMO", 0.2), ("FMO", 0.15),
                        ("AMO", 0.1), ("HCD", 0.05), ("PTW", 0.05), ("FB", 0.05), ("DC", 0.03), ("TGE", 0.01),
                        ("CD", 0.05), ("ID", 0.05), ("TERR", 0.03), ("TEA", 0.05), ("E2H", 0.01), ("NV", 0.01),
                        ("VI", 0.03), ("VF", 0.02), ("VSE", 0.01)):
            if self.chance(p):
                v |= HCR[name]
        return v

    def set_reg(self, name: str, v: int) -> Slot:
        return set_reg(name, v)

    def alloc_page(self) -> tuple[int, bytearray]:
        if self.pool_next >= POOL_PAGES:
            raise RuntimeError("page-table pool exhausted")
        i = self.pool_next
        self.pool_next += 1
        page = bytearray(4096)
        self.case.pool[i] = page
        return self.lay.pool + i * 4096, page

    def stage2(self) -> tuple[int, int]:
        """Random stage-2 tables for the nested VM: (VTTBR_EL2, VTCR_EL2)."""
        r, lay = self.r, self.lay
        vtcr = 25 | 1 << 6 | 1 << 8 | 1 << 10 | 3 << 12 | 2 << 16 | 1 << 31     # 39-bit IPA, 4K, start level 1
        l1, l1p = self.alloc_page()
        dev, devp = self.alloc_page()
        ram, ramp = self.alloc_page()
        l3, l3p = self.alloc_page()
        af, rw, normal, device, xn = 1 << 10, 3 << 6, 0xF << 2, 0x0 << 2, 2 << 53
        struct.pack_into("<Q", l1p, 0, dev | 3)
        struct.pack_into("<Q", l1p, 8, ram | 3)
        if self.chance(0.9):
            struct.pack_into("<Q", devp, (UART >> 21) * 8, UART | af | rw | device | xn | 1)
        if self.chance(0.7):
            struct.pack_into("<Q", devp, (GICD >> 21) * 8, GICD | af | rw | device | xn | 1)
        for i in range(64):                                    # 128 MiB of RAM, 2 MiB blocks
            pa = 0x4000_0000 + (i << 21)
            struct.pack_into("<Q", ramp, i * 8, pa | af | rw | normal | 3 << 8 | 1)
        struct.pack_into("<Q", ramp, 0, l3 | 3)
        first_data = (lay.data - 0x4000_0000) >> 12
        for i in range(512):
            pa = 0x4000_0000 + (i << 12)
            desc = pa | af | rw | normal | 3 << 8 | 3
            if first_data <= i < first_data + DATA_PAGES:
                desc = self.random_s2_page(pa, desc)
            struct.pack_into("<Q", l3p, i * 8, desc)
        self.s2_l3 = l3p
        vmid = r.randrange(256)
        vttbr = l1 | vmid << 48
        if self.chance(0.03):
            vttbr = 0x4800_0000 | vmid << 48                   # tables outside L1's RAM
        return vttbr, vtcr

    def random_s2_page(self, pa: int, desc: int) -> int:
        r = self.r
        k = r.random()
        if k < 0.5:
            return desc
        if k < 0.6:
            return desc & ~(3 << 6) | 1 << 6                   # read-only
        if k < 0.65:
            return desc & ~(3 << 6) | 2 << 6                   # write-only
        if k < 0.7:
            return desc & ~(3 << 6)                            # no access
        if k < 0.8:
            return 0                                           # invalid
        if k < 0.85:
            return desc & ~(1 << 10)                           # access flag clear
        if k < 0.9:
            other = self.lay.data + r.randrange(DATA_PAGES) * 4096
            return desc & ~0xFFFF_FFFF_F000 | other            # alias of another data page
        if k < 0.95:
            out = r.choice([0x4800_0000, 0x8000_0000, 0x1_0000_0000, 0x0A00_0000])
            return desc & ~0xFFFF_FFFF_F000 | out              # outside what L0 gives L1
        return desc & ~0xFFFF_FFFF_F000 & ~(0xF << 2) | UART   # the UART, as Normal memory

    def stage1_l2(self, el0: bool) -> list[Slot]:
        """Stage-1 tables for the nested VM (identity map of the harness), and the
        writes to TTBR0/TCR/MAIR/SCTLR_EL1 that turn its MMU on."""
        r, lay = self.r, self.lay
        l1, l1p = self.alloc_page()
        dev, devp = self.alloc_page()
        ram, ramp = self.alloc_page()
        l3, l3p = self.alloc_page()
        af, ish = 1 << 10, 3 << 8
        uxn, pxn = 1 << 54, 1 << 53
        ap_rw_all, ap_ro_all, ap_rw_el1 = 1 << 6, 3 << 6, 0
        struct.pack_into("<Q", l1p, 0, dev | 3)
        struct.pack_into("<Q", l1p, 8, ram | 3)
        struct.pack_into("<Q", devp, (UART >> 21) * 8, UART | af | ap_rw_all | uxn | pxn | 0 << 2 | 1)
        struct.pack_into("<Q", devp, (GICD >> 21) * 8, GICD | af | ap_rw_el1 | uxn | pxn | 0 << 2 | 1)
        for i in range(1, 64):
            pa = 0x4000_0000 + (i << 21)
            struct.pack_into("<Q", ramp, i * 8, pa | af | ish | 1 << 2 | ap_rw_el1 | uxn | pxn | 1)
        struct.pack_into("<Q", ramp, 0, l3 | 3)
        first_data = (lay.data - 0x4000_0000) >> 12
        harness_data = (lay.harness_data - 0x4000_0000) >> 12
        pool_first = (lay.pool - 0x4000_0000) >> 12
        for i in range(512):
            pa = 0x4000_0000 + (i << 12)
            if i == harness_data:
                desc = pa | af | ish | 1 << 2 | ap_rw_el1 | uxn | pxn | 3
            elif first_data <= i < first_data + DATA_PAGES:
                ap = r.choice([ap_rw_el1, ap_rw_all, ap_ro_all, 2 << 6])
                desc = pa | af | ish | 1 << 2 | ap | uxn | 3
                if self.chance(0.1):
                    desc = 0
                elif self.chance(0.05):
                    desc &= ~af
            elif i >= pool_first:
                desc = pa | af | ish | 1 << 2 | ap_rw_el1 | uxn | pxn | 3
            else:
                desc = pa | af | ish | 1 << 2 | (ap_ro_all if el0 else ap_rw_el1) | 3
            struct.pack_into("<Q", l3p, i * 8, desc)
        # Sometimes put a stage-1 table where stage 2 does not map it (S1PTW faults).
        if getattr(self, "s2_l3", None) is not None and self.chance(0.3):
            idx = ((l3 - 0x4000_0000) >> 12)
            struct.pack_into("<Q", self.s2_l3, idx * 8, 0)
        tcr = 25 | 1 << 8 | 1 << 10 | 3 << 12 | 1 << 23 | 2 << 32
        mair = 0x44FF00
        sctlr = 0x00C50838 | 1 | 1 << 2 | 1 << 12
        return [self.set_reg("MAIR_EL1", mair), self.set_reg("TCR_EL1", tcr), self.set_reg("TTBR0_EL1", l1),
                self.set_reg("SCTLR_EL1", sctlr)]

    def epilogue(self) -> list[Slot]:
        r = self.r
        out = []
        hcr = self.hcr_value()
        if hcr & HCR["VM"]:
            vttbr, vtcr = self.stage2()
            out += [self.set_reg("VTCR_EL2", vtcr), self.set_reg("VTTBR_EL2", vttbr)]
        if self.chance(0.3):
            out.append(self.set_reg("CPTR_EL2", 0x33FF | sum(1 << b for b in (10, 20, 31) if self.chance(0.35))))
        if self.chance(0.3):
            out.append(self.set_reg("MDCR_EL2", r.randrange(7) | sum(1 << b for b in (5, 6, 8, 9, 10, 11)
                                                                    if self.chance(0.25))))
        if self.chance(0.4):
            out.append(self.set_reg("CNTHCTL_EL2", r.randrange(4)))
        if self.chance(0.15):
            out.append(self.set_reg("VPIDR_EL2", r.getrandbits(32)))
        if self.chance(0.15):
            out.append(self.set_reg("VMPIDR_EL2", r.getrandbits(32) | 1 << 31))
        if self.chance(0.1):
            out.append(self.set_reg("ICH_HCR_EL2", r.getrandbits(32) & 0xFFFF_7C1F))
            out.append(self.set_reg("ICH_LR0_EL2", r.getrandbits(64)))
        el0 = self.chance(0.12)
        if self.chance(0.3):
            out += self.stage1_l2(el0)
            self.l2_mmu = True
        out.append(self.set_reg("HCR_EL2", hcr))
        if el0:
            self.case.l2_spsr = 0x3C0
        elif self.chance(0.05):
            self.case.l2_spsr = 0x3C4
        elif self.chance(0.03):
            self.case.l2_spsr = r.getrandbits(32)
        return out

    def generate(self) -> Case:
        r = self.r
        c = self.case
        c.data = bytes(r.getrandbits(8) for _ in range(DATA_PAGES * 4096))
        self.in_b = False
        na = r.randint(4, 40)
        if self.chance(0.9):
            # As a guest hypervisor's first lines do: EL1 is AArch64 (neve has no
            # AArch32 EL1, whose AT and ERET would stop the run as unsupported).
            c.a.append(set_reg("HCR_EL2", HCR["RW"]))
        for _ in range(na):
            c.a.append(self.step(2))
        c.epilogue = self.epilogue()
        self.in_b = True
        nb = r.randint(4, 40)
        for _ in range(nb):
            c.b.append(self.step(1))
        c.note = f"{na} + {len(c.epilogue)} + {nb} slots, L2 SPSR {c.l2_spsr:#x}"
        return c


def generate(seed: int, harness=None) -> Case:
    lay = template(harness)[0] if harness else template()[0]
    return Gen(seed, lay).generate()
