"""The GICv3 and L0's delivery with shadow list registers.

regs (register layouts, the implementation's parameters: pure data) < icc (what the two
CPU interfaces share) < cpuif (ICC_*) and vif (ICH_*/ICV_*) < state (GICv3: the
interrupt state, one CpuInterface per CPU) < mmio (distributor, redistributors) <
delivery (L0's interrupts, timers and shadow list registers).
"""
