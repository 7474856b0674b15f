"""GICv3 model (neve/gic/) and nested virtual interrupts (neve/gic/delivery.py).

Unit tests of the distributor/redistributor MMIO, the CPU interface and the virtual CPU
interface (list registers, maintenance status), then end to end: a tiny guest
hypervisor, assembled here, injects virtual INTID 42 through ICH_LR0_EL2 and its nested
VM acknowledges and EOIs it with no trap, in every nested mode (and on QEMU at real EL2
when it is installed: same transcript).
"""
from __future__ import annotations

import pytest

from neve.gic import regs as G
from neve.gic.mmio import Distributor, Redistributors
from neve.gic.state import GICv3
from neve.gic.vif import VirtualInterface, mask_vmcr
from neve.qemu import qemu_binary, run_qemu

try:
    from tests.test_timer import assemble, run_neve
except ImportError:  # tests/ is not a package
    from test_timer import assemble, run_neve

SGI_BASE = 0x10000


def gic_with_ppi(intid: int = 27, prio: int = 0xA0):
    g = GICv3(1)
    d, r = Distributor(g), Redistributors(g)
    d.write(0x0, 4, 2)                                   # EnableGrp1
    r.write(SGI_BASE + 0x80, 4, 1 << intid)              # group 1
    r.write(SGI_BASE + 0x400 + intid, 1, prio)
    r.write(SGI_BASE + 0x100, 4, 1 << intid)             # enable
    c = g.cpu[0]
    c.write("PMR", 0xFF)
    c.write("IGRPEN1", 1)
    return g, d, r, c


# --- MMIO identification: the values QEMU 10 virt reports ------------------------------
def test_id_and_reset_values_match_qemu():
    g = GICv3(1, [0x8000_0000])
    d, r = Distributor(g), Redistributors(g)
    assert d.read(0x0, 4) == 0x50                        # DS | ARE
    assert d.read(0x4, 4) == 0x037A0008                  # GICD_TYPER (cortex-a72: no NMI)
    assert d.read(0x8, 4) == 0x43B
    assert d.read(0xFFE8, 4) == 0x3B                     # PIDR2: GICv3
    assert r.read(0xFFE8, 4) == 0x3B
    assert r.read(0x0, 4) == 0x2                         # GICR_CTLR.CES
    assert r.read(0x8, 8) == 0x0100_0011                 # GICR_TYPER: Last, PLPIS
    assert r.read(0x14, 4) == 0x6                        # WAKER: asleep
    assert r.read(SGI_BASE + 0x80, 4) == 0               # interrupts reset to group 0
    assert r.read(SGI_BASE + 0xC00, 4) == 0xAAAAAAAA     # SGIs edge
    assert r.read(SGI_BASE + 0xC04, 4) == 0              # PPIs level
    c = g.cpu[0]
    assert (c.read("CTLR"), c.read("BPR1"), c.read("BPR0"), c.read("PMR"), c.read("SRE")) == (0x8C00, 3, 2, 0, 7)
    assert c.read("RPR") == 0xFF and c.read("IAR1") == G.INTID_SPURIOUS
    assert G.ICH_VTR_VALUE == 0x90B80003 and G.ICH_VMCR_RESET == 0x4C0008


def test_waker_children_follow_processor_sleep():
    g = GICv3(1)
    r = Redistributors(g)
    r.write(0x14, 4, 0)
    assert r.read(0x14, 4) == 0
    r.write(0x14, 4, 2)
    assert r.read(0x14, 4) == 6


# --- the CPU interface ---------------------------------------------------------------------
def test_level_ppi_ack_eoi():
    g, d, r, c = gic_with_ppi()
    assert c.signal() is None
    g.set_ppi(0, 27, True)
    assert c.signal() == "irq" and c.read("HPPIR1") == 27
    assert c.read("IAR1") == 27
    assert c.read("RPR") == 0xA0
    assert r.read(SGI_BASE + 0x300, 4) == 1 << 27        # active
    assert c.signal() is None                            # active and pending: not signalled again
    g.set_ppi(0, 27, False)                              # handler re-armed the timer
    c.write("EOIR1", 27)
    assert r.read(SGI_BASE + 0x300, 4) == 0 and c.read("RPR") == 0xFF
    assert c.signal() is None


def test_level_ppi_still_high_after_eoi_is_pending_again():
    g, d, r, c = gic_with_ppi()
    g.set_ppi(0, 27, True)
    assert c.read("IAR1") == 27
    c.write("EOIR1", 27)
    assert c.signal() == "irq"


def test_pmr_priority_and_group_enables():
    g, d, r, c = gic_with_ppi(prio=0xA0)
    g.set_ppi(0, 27, True)
    c.write("PMR", 0xA0)                                 # priority must be strictly higher
    assert c.signal() is None and c.read("IAR1") == G.INTID_SPURIOUS
    c.write("PMR", 0xA8)
    assert c.signal() == "irq"
    c.write("IGRPEN1", 0)
    assert c.signal() is None
    c.write("IGRPEN1", 1)
    d.write(0x0, 4, 0)                                   # distributor group enable
    assert c.signal() is None


def test_eoimode_split_priority_drop_and_deactivate():
    g, d, r, c = gic_with_ppi()
    c.write("CTLR", G.ICC_CTLR_EOIMODE)
    g.set_ppi(0, 27, True)
    assert c.read("IAR1") == 27
    g.set_ppi(0, 27, False)
    c.write("EOIR1", 27)
    assert c.read("RPR") == 0xFF                         # priority dropped
    assert g.private[0].active == 1 << 27                # still active
    c.write("DIR", 27)
    assert g.private[0].active == 0


def test_sgi_and_spi():
    g = GICv3(1, [0x8000_0000])
    d, r = Distributor(g), Redistributors(g)
    d.write(0x0, 4, 2)
    r.write(SGI_BASE + 0x80, 4, 0xFFFF_FFFF)
    r.write(SGI_BASE + 0x100, 4, 1 << 3)
    c = g.cpu[0]
    c.write("PMR", 0xFF)
    c.write("IGRPEN1", 1)
    c.write("SGI1R", (3 << 24) | 1)                      # SGI 3 to Aff0 = 0
    assert c.read("IAR1") == 3
    c.write("EOIR1", 3)
    # SPI 40: group 1, enabled, edge; pended by GICD_ISPENDR.
    d.write(0x80 + 4, 4, 1 << 8)
    d.write(0x100 + 4, 4, 1 << 8)
    d.write(0x400 + 40, 1, 0x80)
    d.write(0x200 + 4, 4, 1 << 8)
    assert d.read(0x200 + 4, 4) == 1 << 8
    assert c.read("IAR1") == 40
    c.write("EOIR1", 40)
    assert d.read(0x300 + 4, 4) == 0
    assert d.read(0x6000 + 8 * 40, 8) == 0               # IROUTER reset: Aff 0
    assert d.read(0x400 + 40, 1) == 0x80


# --- the virtual CPU interface -------------------------------------------------------------
def lr(intid: int, prio: int = 0xA0, state: int = 1, hw: bool = False, pintid: int = 0, eoi: bool = False) -> int:
    v = intid | (prio << 48) | (1 << 60) | (state << 62)
    if hw:
        v |= (1 << 61) | (pintid << 32)
    if eoi:
        v |= G.LR_EOI
    return v


def vif(*lrs: int, hcr: int = G.ICH_HCR_EN) -> VirtualInterface:
    v = VirtualInterface()
    v.hcr = hcr
    v.vmcr = mask_vmcr((0xFF << 24) | G.ICH_VMCR_VENG1)
    for n, x in enumerate(lrs):
        v.lr[n] = x
    return v


def test_lr_pending_active_invalid():
    v = vif(lr(42))
    assert v.signal() == "irq" and v.read("HPPIR1") == 42
    assert v.elrsr() == 0b1110
    assert v.read("IAR1") == 42
    assert v.lr[0] >> 62 == 2 and v.read("RPR") == 0xA0
    assert v.signal() is None and v.read("IAR1") == G.INTID_SPURIOUS
    v.write("EOIR1", 42)
    assert v.lr[0] >> 62 == 0 and v.read("RPR") == 0xFF
    assert v.elrsr() == 0b1111


def test_lr_disabled_interface_or_masked():
    assert vif(lr(42), hcr=0).signal() is None
    v = vif(lr(42, prio=0xF0))
    v.write("PMR", 0xF0)
    assert v.signal() is None


def test_eoi_maintenance_and_eoicount():
    v = vif(lr(42, eoi=True), hcr=G.ICH_HCR_EN | G.ICH_HCR_LRENPIE)
    assert v.read("IAR1") == 42
    assert v.misr() == 0 and not v.maintenance()
    v.write("EOIR1", 42)
    assert v.eisr() == 1 and v.misr() & G.ICH_MISR_EOI and v.maintenance()
    assert v.elrsr() & 1 == 0                            # the EOI bit keeps it out of ELRSR
    # An EOI for an interrupt with no LR bumps EOIcount (LRENP maintenance).
    v2 = vif(hcr=G.ICH_HCR_EN | G.ICH_HCR_LRENPIE)
    v2.apr[1][0] = 1 << (0xA0 >> 3)                      # L1 restored an active priority
    v2.write("EOIR1", 77)
    assert (v2.hcr >> G.ICH_HCR_EOICOUNT_SHIFT) == 1 and v2.misr() & G.ICH_MISR_LRENP


def test_underflow_and_no_pending():
    v = vif(lr(42), hcr=G.ICH_HCR_EN | G.ICH_HCR_UIE | G.ICH_HCR_NPIE)
    assert v.misr() & G.ICH_MISR_U and not v.misr() & G.ICH_MISR_NP
    v.read("IAR1")
    assert v.misr() & G.ICH_MISR_NP


def test_hw_lr_deactivates_the_physical_interrupt():
    seen = []
    v = vif(lr(27, hw=True, pintid=27))
    v.deactivate_physical = seen.append
    assert v.read("IAR1") == 27
    v.write("EOIR1", 27)
    assert seen == [27] and v.lr[0] >> 62 == 0


def test_veoim_split():
    v = vif(lr(42))
    v.write("CTLR", G.ICC_CTLR_EOIMODE)
    v.read("IAR1")
    v.write("EOIR1", 42)
    assert v.lr[0] >> 62 == 2                            # priority dropped, still active
    v.write("DIR", 42)
    assert v.lr[0] >> 62 == 0


def test_load_store_masks_like_the_registers():
    regs = {"ICH_LR0_EL2": lr(42, prio=0xA7), "ICH_VMCR_EL2": 0, "ICH_HCR_EL2": 0xFFFF_FFFF_FFFF_FFFF}
    v = VirtualInterface()
    v.load_values([regs.get(n, 0) for n in VirtualInterface.NAMES])
    assert (v.lr[0] >> 48) & 0xFF == 0xA0
    assert v.vmcr == G.ICH_VMCR_RESET
    assert v.hcr == G.ICH_HCR_WRITABLE
    out = dict(zip(VirtualInterface.NAMES, v.values()))
    assert len(out) == len(v.values()) and out["ICH_LR0_EL2"] == v.lr[0] and out["ICH_HCR_EL2"] == v.hcr


# --- end to end: nested virtual interrupt with shadow LRs ------------------------------------
NESTEDVIRQ = r"""
    .text
    .global _start
_start:
    ldr x28, =0x09000000
    ldr x0, =el2_stack
    mov sp, x0
    ldr x0, =el2_vectors
    msr vbar_el2, x0
    mov x0, #(1 << 31)
    orr x0, x0, #(1 << 4)           // HCR_EL2: RW | IMO | FMO
    orr x0, x0, #(1 << 3)
    msr hcr_el2, x0
    mov x0, #0xf
    msr S3_4_C12_C9_5, x0           // ICC_SRE_EL2
    ldr x0, =0xff000002             // ICH_VMCR_EL2: VPMR = 0xff, VENG1
    msr S3_4_C12_C11_7, x0
    mov x0, #1
    msr S3_4_C12_C11_0, x0          // ICH_HCR_EL2.En
    mov x0, #42                     // ICH_LR0_EL2: pending, group 1, priority 0xa0, vINTID 42
    movk x0, #0xa0, lsl #48
    orr x0, x0, #(1 << 60)
    orr x0, x0, #(1 << 62)
    msr S3_4_C12_C12_0, x0
    ldr x0, =l2_entry
    msr elr_el2, x0
    mov x0, #0x3c5                  // EL1h, DAIF masked
    msr spsr_el2, x0
    isb
    eret

el2_sync_lower:
    adr x0, msg_hvc
    bl puts
    mrs x0, S3_4_C12_C12_0          // ICH_LR0_EL2.State
    lsr x0, x0, #62
    bl putdigit
    adr x0, msg_elrsr
    bl puts
    mrs x0, S3_4_C12_C11_5          // ICH_ELRSR_EL2
    and x0, x0, #1
    bl putdigit
    adr x0, msg_got
    bl puts
    ldr x1, =l2_seen
    ldr w0, [x1]
    mov w10, #10
    udiv w11, w0, w10
    msub w12, w11, w10, w0
    mov w0, w11
    bl putdigit
    mov w0, w12
    bl putdigit
    adr x0, msg_eoi
    bl puts
    ldr x1, =l2_eoied
    ldr w0, [x1]
    bl putdigit
    mov w9, #10
    strb w9, [x28]
    ldr x0, =0x84000008
    smc #0
1:  b 1b

putdigit:
    add w9, w0, #'0'
    strb w9, [x28]
    ret
puts:
    ldrb w9, [x0], #1
    cbz w9, 1f
    strb w9, [x28]
    b puts
1:  ret

l2_entry:
    ldr x0, =l2_stack
    mov sp, x0
    ldr x0, =l2_vectors
    msr vbar_el1, x0
    isb
    msr daifclr, #2
    ldr x1, =l2_seen
1:  ldr w0, [x1]
    cbz w0, 1b
l2_hvc:
    hvc #0
2:  b 2b

l2_irq:
    stp x0, x1, [sp, #-16]!
    mrs x0, S3_0_C12_C12_0          // ICC_IAR1_EL1 -> ICV_IAR1_EL1
    ldr x1, =l2_seen
    str w0, [x1]
    msr S3_0_C12_C12_1, x0          // ICC_EOIR1_EL1 -> ICV_EOIR1_EL1
    mrs x0, S3_0_C12_C12_0          // nothing left: 1023
    ldr x1, =1023
    cmp x0, x1
    cset w0, eq
    ldr x1, =l2_eoied
    str w0, [x1]
    ldp x0, x1, [sp], #16
    eret

msg_hvc:   .asciz "nestedvirq: HVC from the VM, LR0.State="
msg_elrsr: .asciz " ELRSR0="
msg_got:   .asciz " acked="
msg_eoi:   .asciz " then-spurious="
    .balign 2048
el2_vectors:
    .rept 8
    b .
    .balign 128
    .endr
    b el2_sync_lower                // lower EL, AArch64, synchronous
    .balign 128
    .rept 7
    b .
    .balign 128
    .endr
    .balign 2048
l2_vectors:
    .rept 4
    b .
    .balign 128
    .endr
    b .
    .balign 128
    b l2_irq                        // current EL, SPx, IRQ
    .balign 128
    .rept 10
    b .
    .balign 128
    .endr
    .data
    .balign 8
l2_seen: .word 0
l2_eoied: .word 0
    .balign 16
    .space 2048
el2_stack:
    .space 2048
l2_stack:
"""

NESTED_EXPECTED = b"nestedvirq: HVC from the VM, LR0.State=0 ELRSR0=1 acked=42 then-spurious=1\n"


@pytest.fixture(scope="module")
def nestedvirq(tmp_path_factory):
    return assemble(tmp_path_factory.mktemp("nestedvirq"), "nestedvirq", NESTEDVIRQ)


@pytest.mark.toolchain
@pytest.mark.parametrize("mode", ["v8.3", "neve", "nv2"])
def test_nested_virtual_eoi_costs_no_trap(nestedvirq, mode):
    m, r, traps = run_neve(nestedvirq, mode)
    assert (r.reason, r.status) == ("system-off", 0), r.message
    assert bytes(m.transcript) == NESTED_EXPECTED
    # What the nested VM ran (ICV_IAR1, ICV_EOIR1, a second ICV_IAR1) cost exactly one
    # trap: its HVC.
    l2 = [t for t in traps if t.level in ("EL1", "EL0")]
    assert [(t.cls, t.name) for t in l2] == [("hvc", "HVC #0x0")], l2
    # L1's view after the exit: the LR went pending -> active -> invalid.
    assert m.vel2.get("ICH_LR0_EL2") >> 62 == 0
    assert m.irq.shadow.lr[0] >> 62 == 0


@pytest.mark.qemu
@pytest.mark.toolchain
def test_nested_virtual_eoi_matches_qemu(nestedvirq):
    if qemu_binary() is None:
        pytest.skip("qemu-system-aarch64 not found")
    out, status = run_qemu([nestedvirq], el2=True, semihosting=False)
    assert status == 0
    assert out == NESTED_EXPECTED
