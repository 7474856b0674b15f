"""The GICv3: distributor and redistributors, the CPU interface, the virtual interface, and L0's delivery with shadow list registers."""
