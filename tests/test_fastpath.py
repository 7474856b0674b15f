"""The compiled fast path (neve/core/_fastpath.c, neve/core/fastpath.py) against the
Python path it stands in front of.

Every image set of the differential tests, in every mode it runs in, gives the same
transcript, exit, instruction count, virtual time, trap counts (by class, by register,
per hypercall) and page-access counts with and without it; the differential tests
compare the default (compiled) path with QEMU.  And the compiled path must really
answer accesses: in neve and nv2 most of vEL2's register accesses never reach Python.
"""
from __future__ import annotations

import pytest

from conftest import IMAGES
from neve.arch import sysregs
from neve.core import elf, fastpath
from neve.core.machine import Machine
from test_differential import IMAGE_SETS


def run(images: tuple[str, ...], mode: str, max_insns: int, python_only: bool, monkeypatch) -> tuple[Machine, tuple]:
    with monkeypatch.context() as mp:
        if python_only:
            mp.setenv("NEVE_FASTPATH", "0")
        m = Machine([elf.load(str(IMAGES / n)) for n in images], mode=mode, max_insns=max_insns,
                    uart_out=lambda b: None, semihost_out=lambda b: None)
        assert (m.vcpu.fast is None) == python_only
        r = m.run()
    s = m.stats
    calls = {g: [(n, dict(c), dict(r_)) for n, c, r_ in v] for g, v in s.calls.items()}
    return m, (bytes(m.transcript), r.reason, r.status, m.icount(), m.counter.now(), s.total,
               dict(s.by_class), dict(s.by_register), calls, m.page_counts())


# Rows whose run only repeats another's at a larger size (countwait: 100 ms of the loop
# countwait10 runs for 10 ms, which tests/test_countwait.py also compares both ways).
_REPEATS = {"countwait"}


def _cases():
    for s in IMAGE_SETS:
        if s.name in _REPEATS:
            continue
        for mode in s.run_modes():
            yield pytest.param(s.images, mode, min(s.max_insns, 20_000_000), id=f"{s.name}-{mode}")


@pytest.fixture(scope="module", autouse=True)
def built():
    if fastpath.library() is None:
        pytest.fail("the compiled fast path is not built (pip install -e . builds it)")


@pytest.mark.parametrize("images, mode, max_insns", list(_cases()))
def test_same_run_with_and_without_the_fast_path(images, mode, max_insns, monkeypatch):
    _, a = run(images, mode, max_insns, False, monkeypatch)
    _, b = run(images, mode, max_insns, True, monkeypatch)
    assert a == b


@pytest.mark.parametrize("mode", ["neve", "nv2"])
def test_page_accesses_and_redirects_are_made_in_c(mode, monkeypatch):
    m, res = run(("kvmlike.elf", "hypercall.elf"), mode, 20_000_000, False, monkeypatch)
    hits = m.vcpu.fast.hits()
    mem, red = res[-1]
    assert mem > 0 and red > 0
    # Nearly all page accesses and redirects were made by the C hooks; Python makes the
    # few whose rows have side effects (a GIC or timer register, vEL2's own regime).
    assert 0.9 * mem <= hits["mem"] <= mem and 0.9 * red <= hits["redirect"] <= red
    assert hits["python"] < hits["mem"] + hits["redirect"] + hits["native"]


def test_a_page_access_subscriber_sees_every_access(monkeypatch):
    """Someone who subscribes to PageAccess events gets them all: the compiled hooks
    then leave those accesses to Python."""
    from neve.observe import events as ev
    m = Machine([elf.load(str(IMAGES / n)) for n in ("kvmlike.elf", "hypercall.elf")], mode="neve",
                uart_out=lambda b: None)
    seen = []
    m.bus.subscribe(ev.PageAccess, seen.append)
    m.run()
    assert len(seen) == sum(m.page_counts()) > 0
    assert m.vcpu.fast.hits()["mem"] == 0


def test_without_the_module_neve_says_so_once_and_runs(monkeypatch, capsys):
    monkeypatch.setattr(fastpath, "_LIB", False)
    monkeypatch.setattr(fastpath, "_WARNED", False)
    monkeypatch.setattr(fastpath.importlib.util, "find_spec", lambda name: None)
    m1 = Machine([elf.load(str(IMAGES / "hello.elf"))], mode="vm", uart_out=lambda b: None)
    m2 = Machine([elf.load(str(IMAGES / "hello.elf"))], mode="vm", uart_out=lambda b: None)
    assert m1.vcpu.fast is None and m2.vcpu.fast is None
    assert m1.run().reason == "system-off"
    err = capsys.readouterr().err
    assert err.count("compiled fast path is not available") == 1, err
    assert err.count("\n") == 1


def _compare(images: list, mode: str, monkeypatch, **kw) -> None:
    runs = []
    for python_only in (False, True):
        with monkeypatch.context() as mp:
            if python_only:
                mp.setenv("NEVE_FASTPATH", "0")
            m = Machine(images, mode=mode, uart_out=lambda b: None, semihost_out=lambda b: None, **kw)
            r = m.run()
        s = m.stats
        runs.append((bytes(m.transcript), r.reason, r.status, r.message, m.icount(), m.counter.now(), s.total,
                     dict(s.by_register), m.page_counts()))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("mode", ["vm", "v8.3", "neve", "nv2"])
def test_fuzz_cases_run_the_same_with_and_without_the_fast_path(mode, tmp_path, monkeypatch):
    """Generated cases (neve fuzz's: system registers, exceptions, loads and stores,
    FP, at EL1 and at vEL2) run alike both ways, whatever they end with."""
    from neve.fuzz.gen import generate
    for seed in range(60):
        img = generate(seed).write(tmp_path / f"c{seed}.elf")
        _compare([elf.load(str(img))], mode, monkeypatch, max_insns=2_000_000)


def test_a_policy_runs_the_same_with_and_without_the_fast_path(monkeypatch):
    from conftest import ROOT
    from neve.el2 import policy
    pol = policy.load(ROOT / "examples" / "policy-vtr-in-page.toml")
    images = [elf.load(str(IMAGES / n)) for n in ("kvmlike.elf", "hypercall.elf")]
    _compare(images, pol.base, monkeypatch, policy=pol)


def test_the_compiled_ram_scan_finds_what_the_python_one_finds(monkeypatch):
    """neve/core/eret.py's scan for ERET and LDAR/STLR words, compiled and in Python,
    over random bytes (with those words planted at every alignment) and the images."""
    import random
    from neve.core import eret

    def hooked(python_only: bool, images) -> dict:
        with monkeypatch.context() as mp:
            if python_only:
                mp.setenv("NEVE_FASTPATH", "0")
            m = Machine(images, mode="vm", uart_out=lambda b: None)
        rng = random.Random(5)
        junk = bytearray(rng.randbytes(1 << 16))
        for k in range(0, 400, 4):
            off = rng.randrange(0, len(junk) - 8)
            junk[off:off + 4] = rng.choice([0xD69F03E0, 0xC8DFFC62, 0x889FFC41, 0x48DFFC20]).to_bytes(4, "little")
        m.ram[0x100000:0x100000 + len(junk)] = junk
        m.erets.scan(0x40100000 - 3, len(junk) + 6)         # unaligned ends too
        return {a: fn.__name__ for a, fn in m.erets._hooked.items()}

    images = [elf.load(str(IMAGES / n)) for n in ("kvmlike.elf",)]
    a, b = hooked(False, images), hooked(True, images)
    assert a == b and len(a) > 20
    assert set(a.values()) == {"_eret", "_acqrel"}
    assert eret.ERET_WORDS                                   # (what is searched for)


def test_l1_el1_maintenance_runs_natively_unless_l1_traps_it():
    """Below vEL2, the EL1 table lets the CPU execute the cache and TLB maintenance
    L1's HCR_EL2 does not trap (no Python per DC/TLBI of a nested kernel), and sends
    to Python exactly what a rule of sysregs.SYS_TRAPS traps under L1's controls;
    IC and AT always go to Python (code rescans, AT emulation)."""
    m = Machine([elf.load(str(IMAGES / n)) for n in ("kvmlike.elf", "hypercall.elf")], mode="nv2",
                uart_out=lambda b: None)
    fast, v = m.vcpu.fast, m.vel2
    rw = 1 << 31
    bits = {n: 1 << b for n, b in (("TPU", 24), ("TTLB", 25), ("TPCP", 23), ("TSW", 22), ("TDZ", 28))}
    enc = {"DC CVAU": (1, 3, 7, 11, 1), "DC CIVAC": (1, 3, 7, 14, 1), "DC CISW": (1, 0, 7, 14, 2),
           "DC ZVA": (1, 3, 7, 4, 1), "TLBI VMALLE1IS": (1, 0, 8, 3, 0), "TLBI VAE1": (1, 0, 8, 7, 1),
           "IC IVAU": (1, 3, 7, 5, 1), "IC IALLU": (1, 0, 7, 5, 0), "AT S1E1R": (1, 0, 7, 8, 0)}
    rest = v.forward_key()[1:]
    for hcr in (rw, rw | bits["TPU"] | bits["TTLB"], rw | bits["TPCP"] | bits["TSW"] | bits["TDZ"]):
        t = fast._el(1, (hcr,) + rest)
        for name, key in enc.items():
            rule = sysregs.SYS_TRAPS.get(name)
            python = name.startswith(("IC", "AT")) or (rule is not None and rule.holds(v.controls_of((hcr,) + rest)))
            assert (t[fastpath.index(key, True)] & 7) == (fastpath.SLOW if python else fastpath.NATIVE), (hex(hcr), name)


def test_dczid_reads_are_native_unless_the_model_answers_them():
    """DCZID_EL0 (read by a kernel's clear_page for every page) is the CPU's unless
    L1's HCR_EL2.TDZ makes the model answer DZP = 1: native in vm mode and below a
    vEL2 without TDZ, Python's (which sets DZP) under TDZ."""
    key = sysregs.BY_NAME["DCZID_EL0"].key
    vm = Machine([elf.load(str(IMAGES / "hello.elf"))], mode="vm", uart_out=lambda b: None)
    assert vm.vcpu.fast._el(1, None)[fastpath.index(key, False)] & 7 == fastpath.NATIVE
    m = Machine([elf.load(str(IMAGES / n)) for n in ("kvmlike.elf", "hypercall.elf")], mode="nv2",
                uart_out=lambda b: None)
    rest = m.vel2.forward_key()[1:]
    for hcr, want in ((1 << 31, fastpath.NATIVE), (1 << 31 | 1 << 28, fastpath.SLOW)):
        assert m.vcpu.fast._el(1, (hcr,) + rest)[fastpath.index(key, False)] & 7 == want, hex(hcr)


# A world switch's register program (neve/core/cpu.py OP_*): the compiled runner
# (neve_fast_reg_ops) against CPU.reg_ops, from each kind of PSTATE to each other
# (SP banking between SP_EL0 and SP_EL1, EL0 <-> EL1).
_PSTATES = (0x3C5, 0x3C4, 0x3C0)        # EL1h, EL1t, EL0t (DAIF masked)


def _program_machine(fast: bool, monkeypatch) -> Machine:
    with monkeypatch.context() as mp:
        if not fast:
            mp.setenv("NEVE_FASTPATH", "0")
        return Machine([elf.load(str(IMAGES / "minhyp.elf"))], mode="neve", uart_out=lambda b: None)


def _program_snapshot(m: Machine, slots: range) -> tuple:
    from unicorn import arm64_const as A
    cpu = m.cpu
    regs = [cpu.reg(r) for r in (A.UC_ARM64_REG_PC, A.UC_ARM64_REG_PSTATE, A.UC_ARM64_REG_SP,
                                 A.UC_ARM64_REG_SP_EL0, A.UC_ARM64_REG_SP_EL1)]
    regs += [cpu.sp_el(0), cpu.sp_el(1), cpu.el()]
    regs += [cpu.read_sysreg(n) for n in ("TTBR0_EL1", "TTBR1_EL1", "MAIR_EL1", "TPIDR_EL1", "VBAR_EL1")]
    return tuple(regs), tuple(m.vel2.store[i] for i in slots)


@pytest.mark.parametrize("new", _PSTATES)
@pytest.mark.parametrize("old", _PSTATES)
def test_a_register_program_does_in_c_what_it_does_in_python(old, new, monkeypatch):
    from unicorn import arm64_const as A
    from neve.core import cpu as c
    key = {n: sysregs.BY_NAME[n].key for n in ("TTBR0_EL1", "TTBR1_EL1", "MAIR_EL1", "TPIDR_EL1", "VBAR_EL1")}
    snaps = []
    for fast in (True, False):
        m = _program_machine(fast, monkeypatch)
        assert (m.vcpu.fast is not None) == fast
        st, base = m.vel2.store, len(m.vel2.store) - 16     # the last scratch slots, and some below
        slots = range(base, len(st))
        cpu = m.cpu
        cpu.set_pstate(old)
        cpu.sp, cpu.pc = 0x4000_1000, 0x4000_0000
        cpu.set_sp_el(0 if old & 1 == 0 or old >> 2 & 3 else 1, 0x4000_2000)
        for i, n in enumerate(key):
            cpu.write_sysreg(n, 0x1000 * (i + 1))
        for i in slots:
            st[i] = 0
        st[base], st[base + 1], st[base + 2], st[base + 3] = new, 0x4444_0000, 0x5555_0000, 0x7777_7000
        ops = [(c.OP_REG_SAVE, A.UC_ARM64_REG_PSTATE, base + 4),
               (c.OP_CP_SAVE, key["TTBR0_EL1"], base + 5), (c.OP_SP_SAVE, 1, base + 6), (c.OP_SP_SAVE, 0, base + 7),
               (c.OP_CP_LOAD, key["MAIR_EL1"], base + 1), (c.OP_CP_LOAD, key["TPIDR_EL1"], base + 2),
               (c.OP_PSTATE, None, base), (c.OP_SP_LOAD, 1, base + 3), (c.OP_SP_SAVE, 1, base + 8),
               (c.OP_REG_LOAD, A.UC_ARM64_REG_PC, base + 2), (c.OP_REG_SAVE, A.UC_ARM64_REG_SP, base + 9),
               (c.OP_CP_SAVE, key["VBAR_EL1"], base + 10), (c.OP_TLB_FLUSH, None, 0)]
        if fast:
            assert m.vcpu.fast.reg_program(ops)() == 0
        else:
            cpu.reg_ops(ops, st)
        snaps.append(_program_snapshot(m, slots))
    assert snaps[0] == snaps[1]
    regs, _ = snaps[0]
    assert regs[1] & 0xF == new & 0xF and regs[7] == new >> 2 & 3


def test_a_register_program_says_which_op_failed(monkeypatch):
    from neve.core import cpu as c
    m = _program_machine(True, monkeypatch)
    ops = [(c.OP_TLB_FLUSH, None, 0), (99, None, 0), (c.OP_TLB_FLUSH, None, 0)]     # 99: no such op
    assert m.vcpu.fast.reg_program(ops)() == 2
    with pytest.raises(ValueError, match="unknown op 99"):
        m.cpu.reg_ops(ops, m.vel2.store)


def test_the_compiled_fp_prefilter_keeps_every_fp_instruction():
    """The block check answers "no FP instruction here" in C only when no word could be
    one (neve_fast_maybe_fp): every word decode.py calls FP/SIMD, SVE or SME passes it."""
    import random
    from neve.arch import decode
    lib = fastpath.library()
    rng = random.Random(11)
    words = [rng.getrandbits(32) for _ in range(200_000)]
    words += [(op1 << 25) | (b31 << 31) | (b26 << 26) | rng.getrandbits(25) & ~(1 << 26)
              for op1 in range(16) for b31 in (0, 1) for b26 in (0, 1) for _ in range(50)]
    fp = [w for w in words if decode.classify(w).kind == "fp"]
    assert len(fp) > 10_000
    assert all(lib.neve_fast_maybe_fp(w) for w in fp)
    # ... and it is a filter: most other words are let through without Python.
    other = [w for w in words if decode.classify(w).kind != "fp"]
    assert sum(1 for w in other if lib.neve_fast_maybe_fp(w)) < len(other) // 20


def test_an_alias_hooked_for_both_kinds_of_word_checks_the_word_it_holds():
    """A VA aliased to a page with an LDAR at some offset and later to one with an ERET
    there gets the check of both (each looks at the word when it runs), not the first
    one only; with the compiled check installed nothing waits for the next slice."""
    from neve.core.machine import Machine
    m = Machine([elf.load(str(IMAGES / "hello.elf"))], mode="vm", uart_out=lambda b: None)
    base = 0x100000                                        # RAM offsets of two spare pages
    m.ram[base + 0x40:base + 0x44] = (0xC8DFFC62).to_bytes(4, "little")          # ldar x2, [x3]
    m.ram[base + 0x440:base + 0x444] = (0xD69F03E0).to_bytes(4, "little")        # eret
    va = 0x8000_0000
    assert m.erets.alias(va, 0x4000_0000 + base)
    assert m.erets._hooked[va + 0x40].__name__ == "_acqrel"
    assert not m.erets.alias(va, 0x4000_0000 + base + 0x400)      # no new address ...
    assert m.erets._hooked[va + 0x40].__name__ == "_word"         # ... but both checks there
    m.run()
    assert m.erets.pending is False
