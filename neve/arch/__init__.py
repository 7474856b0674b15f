"""The architecture as data: the system-register table, instruction decode, the MMU's table walks, the CPU model and the board's memory map. Pure Python, no Unicorn."""
