"""neve's own fuzzer: random kernels for the fuzz harness, run in every mode and on
QEMU (`neve fuzz`; see neve/fuzz/run.py)."""
