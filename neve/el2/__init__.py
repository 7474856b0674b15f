"""Virtual EL2: its register file and page, the world switch, sysreg emulation, the shadow stage 2 and the policy."""
