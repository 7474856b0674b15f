"""A guest hypervisor that runs its code at a VA other than its PA (as Linux's nVHE
hypervisor does: the kernel's code at its own EL2 VAs).  neve finds ERET, LDAR and
STLR words by their physical address; with vEL2's MMU on it must also take them
where they run: an ERET at the alias traps with its own PC (not through the ERET
safety net, which knows no PC), and a misaligned LDAR there takes its alignment
fault (Unicorn would load).  The image enables the EL2 MMU with RAM mapped twice,
at its PA and at PA + 1 GiB, runs a misaligned LDAR and an ERET at the alias, and
its EL1 part calls back with HVC; QEMU runs it at real EL2 (the transcript is
compared), in each nested mode, with the compiled fast path and without it."""
from __future__ import annotations

import json
import subprocess

import pytest

from conftest import CROSS, need_tool, run_neve
from guest_asm import MACROS

ALIAS = 0x4000_0000          # VA = PA + ALIAS for RAM's second mapping

SOURCE = MACROS + r"""
    .text
    .global _start
_start:
    ldr     x1, =0x09000000
    adr     x0, vectors
    msr     vbar_el2, x0
    adr     x0, tbl                         // level-1 table, 1 GiB blocks, 39-bit VAs
    ldr     x2, =(0x00000000 | (1 << 10) | (0 << 2) | 1)                // devices: Device-nGnRnE
    str     x2, [x0, #0]
    ldr     x2, =(0x40000000 | (1 << 10) | (3 << 8) | (1 << 2) | 1)     // RAM, Normal WB
    str     x2, [x0, #8]
    str     x2, [x0, #16]                   // ... again at VA 0x80000000: the alias
    msr     ttbr0_el2, x0
    ldr     x2, =0xff00                     // attr 0 Device-nGnRnE, attr 1 Normal WB
    msr     mair_el2, x2
    ldr     x2, =(25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23) | (1 << 31))
    msr     tcr_el2, x2
    isb
    tlbi    alle2
    dsb     ish
    isb
    mrs     x2, sctlr_el2
    orr     x2, x2, #1                      // M
    orr     x2, x2, #(1 << 2)               // C
    orr     x2, x2, #(1 << 12)              // I
    msr     sctlr_el2, x2
    isb
    adr     x0, msg_on
    bl      puts
    adr     x2, at_alias
    mov     x9, #0x40000000
    add     x2, x2, x9
    br      x2
at_alias:                                   // runs at VA 0x8000xxxx
    adr     x3, data
    add     x3, x3, #1
    .global alias_ldar
alias_ldar:
    ldar    x4, [x3]                        // misaligned: an alignment fault at EL2
    adr     x2, el1_entry
    sub     x2, x2, x9                      // EL1 runs with its MMU off: the PA
    msr     elr_el2, x2
    mov     x2, #0x3c5                      // EL1h, DAIF masked
    msr     spsr_el2, x2
    mov     x2, #(1 << 31)                  // HCR_EL2.RW
    msr     hcr_el2, x2
    isb
    .global alias_eret
alias_eret:
    eret

el1_entry:
    ldr     x1, =0x09000000
    adr     x0, msg_el1
    bl      puts
    hvc     #0x7

el2_sync:                                   // the LDAR's fault
    ldr     x1, =0x09000000
    adr     x0, msg_sync
    bl      puts
    mrs     x0, esr_el2
    put_hex_x0 32
    mov     w2, #' '
    strb    w2, [x1]
    mrs     x0, far_el2
    put_hex_x0 64
    mov     w2, #' '
    strb    w2, [x1]
    mrs     x0, elr_el2
    put_hex_x0 64
    mov     w2, #'\n'
    strb    w2, [x1]
    mrs     x0, elr_el2
    add     x0, x0, #4
    msr     elr_el2, x0
    .global sync_eret
sync_eret:
    eret

lower_sync:                                 // the EL1 part's HVC
    ldr     x1, =0x09000000
    adr     x0, msg_hvc
    bl      puts
    mrs     x0, esr_el2
    put_hex_x0 32
    mov     w2, #'\n'
    strb    w2, [x1]
    system_off_any_el

    puts_function

    .balign 2048
vectors:
    .skip   0x200
    b       el2_sync                        // current EL, SP_ELx, synchronous
    .skip   0x400 - 0x204
    b       lower_sync                      // lower EL, AArch64, synchronous
    .skip   0x800 - 0x404

msg_on:   .asciz "el2: MMU on, RAM also at PA + 1 GiB\n"
msg_el1:  .asciz "el1: entered from the ERET at the alias\n"
msg_sync: .asciz "el2: LDAR at the alias: ESR FAR ELR "
msg_hvc:  .asciz "el2: HVC from EL1, ESR "
    .balign 16
data:     .quad 0x1122334455667788, 0x99aabbccddeeff00
    .ltorg
    .balign 4096
tbl:      .skip 4096
"""


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    as_, ld = need_tool(CROSS + "as"), need_tool(CROSS + "ld")
    d = tmp_path_factory.mktemp("alias")
    (d / "alias.S").write_text(SOURCE)
    subprocess.run([as_, str(d / "alias.S"), "-o", str(d / "alias.o")], check=True)
    subprocess.run([ld, "-n", "--build-id=none", "-Ttext=0x40000000", "-e", "_start", str(d / "alias.o"),
                    "-o", str(d / "alias.elf")], check=True)
    nm = subprocess.run([need_tool(CROSS + "nm"), str(d / "alias.elf")], capture_output=True, text=True,
                        check=True).stdout
    syms = {ln.split()[2]: int(ln.split()[0], 16) for ln in nm.splitlines() if len(ln.split()) == 3}
    return d / "alias.elf", syms


@pytest.fixture(scope="module")
def qemu_out(image):
    from neve.qemu import qemu_binary, run_qemu_full
    if qemu_binary() is None:
        return None
    r = run_qemu_full([image[0]], el2=True, cpu="cortex-a72")
    assert r.status == 0, r.stderr
    return r.stdout.decode()


@pytest.mark.toolchain
@pytest.mark.parametrize("fast", ["1", "0"], ids=["compiled", "python"])
@pytest.mark.parametrize("mode", ["v8.3", "neve", "nv2"])
def test_eret_and_ldar_at_an_el2_alias(image, qemu_out, tmp_path, monkeypatch, mode, fast):
    img, syms = image
    monkeypatch.setenv("NEVE_FASTPATH", fast)
    trace = tmp_path / "t.jsonl"
    r = run_neve("run", "--mode", mode, "--trace", trace, img)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    ldar = syms["alias_ldar"] + ALIAS
    # EC 0x25 (data abort, same EL), DFSC 0x21 (alignment); FAR the unaligned VA.
    assert f"el2: LDAR at the alias: ESR FAR ELR 96000021 {syms['data'] + ALIAS + 1:016x} {ldar:016x}\n" in out, out
    assert "el1: entered from the ERET at the alias\nel2: HVC from EL1, ESR 5a000007\n" in out, out
    if qemu_out is not None:
        assert out == qemu_out
    erets = [e for e in map(json.loads, trace.read_text().splitlines()) if e.get("class") == "eret"]
    # The fault handler's ERET (at its PA: the vectors are at VA = PA), then the alias's.
    assert [e["pc"] for e in erets] == [f"{syms['sync_eret']:#x}", f"{syms['alias_eret'] + ALIAS:#x}"], erets
    assert not any("safety net" in e["reason"] for e in erets), erets
