"""GICv3 register layouts and this implementation's parameters: pure data.

Facts follow the GICv3 architecture specification (IHI 0069) and, where it leaves a
choice, what QEMU 10's `virt` GICv3 does (read in QEMU's hw/intc/arm_gicv3_*.c and
measured on `qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max`):
no security extensions (GICD_CTLR.DS = 1, ARE always on), 5 priority and preemption
bits in both interfaces, 4 list registers, interrupts reset to Group 0, PPIs level-
and SGIs edge-triggered, 288 SPIs (GICD_TYPER.ITLinesNumber = 8), and the ID/TYPER
values QEMU reports (LPIs are advertised as QEMU does but not implemented).

neve/arch (the CPU model, the register table) takes its GIC parameters from here;
this module imports nothing from neve.
"""
from __future__ import annotations

# --- architecture constants ---------------------------------------------------------
INTID_SPURIOUS = 1023
NUM_PRIVATE = 32
NUM_IRQS = 320                 # 32 private + 288 SPIs (QEMU virt: GICD_TYPER.ITLinesNumber = 8)
PPI_MAINTENANCE = 25

PRIBITS = 5                    # implemented priority bits (physical and virtual)
PREBITS = 5                    # implemented preemption bits
MIN_BPR0 = 7 - PREBITS         # 2
MIN_BPR1 = MIN_BPR0 + 1        # 3
PRIO_MASK = (0xFF << (8 - PRIBITS)) & 0xFF
IDLE_PRIORITY = 0xFF

GICD_CTLR_EN_GRP0 = 1 << 0
GICD_CTLR_EN_GRP1 = 1 << 1
GICD_CTLR_ARE = 1 << 4
GICD_CTLR_DS = 1 << 6

# GICD_TYPER as QEMU 10 virt reports it with the CPU neve models (neve/arch/model.py):
# No1N, A3V, IDbits = 15, LPIS, ITLinesNumber.  No NMI (bit 9): QEMU sets it only
# for a CPU with FEAT_NMI, which cortex-a72 (ARMv8.0) does not have.
GICD_TYPER_VALUE = (1 << 25) | (1 << 24) | (0xF << 19) | (1 << 17) | (NUM_IRQS // 32 - 2)
GIC_IIDR = 0x43B               # Arm, r0p0 (as a GIC-500)
GICR_CTLR_ENABLE_LPIS = 1 << 0
GICR_CTLR_CES = 1 << 1
GICR_WAKER_PROCESSOR_SLEEP = 1 << 1
GICR_WAKER_CHILDREN_ASLEEP = 1 << 2
# CoreSight ID registers from offset 0xFFD0: PIDR4..7, PIDR0..3, CIDR0..3; PIDR0 (None)
# is the frame's own.
IDREGS = (0x44, 0x00, 0x00, 0x00, None, 0xB4, 0x3B, 0x00, 0x0D, 0xF0, 0x05, 0xB1)
PIDR0_DIST, PIDR0_REDIST = 0x92, 0x93

# ICC_CTLR_EL1 (read-only fields as QEMU): A3V, IDbits = 1 (24-bit), PRIbits = 4.
ICC_CTLR_CBPR = 1 << 0
ICC_CTLR_EOIMODE = 1 << 1
ICC_CTLR_RO = (1 << 15) | (1 << 11) | ((PRIBITS - 1) << 8)
ICC_SRE_EL1_VALUE = 0x7        # SRE, DFB, DIB: RAO/WI

# ICH_* fields.
ICH_HCR_EN = 1 << 0
ICH_HCR_UIE = 1 << 1
ICH_HCR_LRENPIE = 1 << 2
ICH_HCR_NPIE = 1 << 3
ICH_HCR_VGRP0EIE = 1 << 4
ICH_HCR_VGRP0DIE = 1 << 5
ICH_HCR_VGRP1EIE = 1 << 6
ICH_HCR_VGRP1DIE = 1 << 7
ICH_HCR_EOICOUNT_SHIFT = 27
ICH_HCR_WRITABLE = 0xFF | (0x1F << 10) | (0x1F << ICH_HCR_EOICOUNT_SHIFT)   # En..VGrp1DIE, TC..TDIR, EOIcount

ICH_VMCR_VENG0 = 1 << 0
ICH_VMCR_VENG1 = 1 << 1
ICH_VMCR_VFIQEN = 1 << 3
ICH_VMCR_VCBPR = 1 << 4
ICH_VMCR_VEOIM = 1 << 9
ICH_VMCR_VBPR1_SHIFT = 18
ICH_VMCR_VBPR0_SHIFT = 21
ICH_VMCR_VPMR_SHIFT = 24
ICH_VMCR_WRITABLE = (ICH_VMCR_VENG0 | ICH_VMCR_VENG1 | ICH_VMCR_VCBPR | ICH_VMCR_VEOIM
                     | (7 << ICH_VMCR_VBPR1_SHIFT) | (7 << ICH_VMCR_VBPR0_SHIFT) | (0xFF << ICH_VMCR_VPMR_SHIFT))
ICH_VMCR_RESET = ICH_VMCR_VFIQEN | (MIN_BPR1 << ICH_VMCR_VBPR1_SHIFT) | (MIN_BPR0 << ICH_VMCR_VBPR0_SHIFT)

ICH_MISR_EOI = 1 << 0
ICH_MISR_U = 1 << 1
ICH_MISR_LRENP = 1 << 2
ICH_MISR_NP = 1 << 3
ICH_MISR_VGRP0E = 1 << 4
ICH_MISR_VGRP0D = 1 << 5
ICH_MISR_VGRP1E = 1 << 6
ICH_MISR_VGRP1D = 1 << 7

LR_PENDING = 1 << 62
LR_ACTIVE = 1 << 63
LR_STATE_MASK = 3 << 62
LR_HW = 1 << 61
LR_GROUP = 1 << 60
LR_NMI = 1 << 59
LR_PRIORITY_SHIFT = 48
LR_EOI = 1 << 41               # HW = 0: maintenance interrupt on deactivation
LR_PINTID_SHIFT = 32

NUM_LRS = 4
# ICH_VTR_EL2 as QEMU 10 reports it: PRIbits-1, PREbits-1, IDbits = 1, A3V, nV4, TDS, ListRegs-1.
ICH_VTR_VALUE = (((PRIBITS - 1) << 29) | ((PREBITS - 1) << 26) | (1 << 23) | (1 << 21) | (1 << 20)
                 | (1 << 19) | (NUM_LRS - 1))

