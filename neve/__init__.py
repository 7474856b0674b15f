"""neve: a functional emulator of Arm nested virtualization (ARMv8.3 NV, NEVE, FEAT_NV2)."""

__version__ = "0.1.0"
