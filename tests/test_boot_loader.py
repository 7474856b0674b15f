"""`neve run --kernel/--initrd/--append/--dtb/--bios/--kernel-addr` against QEMU's
`-kernel/-initrd/-append/-dtb/-bios` (neve/boot/).

The probe kernel prints, on the PL011: x0, x1|x2|x3, its own address (where it was
loaded), the EL it started at, and the first word of the device tree (at x0, or at
RAM base when x0 is 0, where QEMU puts it for an ELF or firmware), then powers off.
Each layout runs on neve and on QEMU 10 (-M virt,gic-version=3 -cpu cortex-a72) and
the lines must be equal, byte for byte.  Bad input: one line on stderr, exit 2.
"""
from __future__ import annotations

import gzip
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import CROSS, EXIT_BAD_INPUT, assemble, need_qemu, need_tool, one_line_error, run_neve
from guest_asm import MACROS


def probe_source(text_offset: int = 0, image_size: int = 0x10000, flags: int = 0, magic: bool = True) -> str:
    header = f"""
_start:
    b       code
    .long   0
    .quad   {text_offset:#x}            // text_offset
    .quad   {image_size:#x}             // image_size
    .quad   {flags:#x}                  // flags
    .quad   0, 0, 0
    .ascii  "{'ARM' if magic else 'XXX'}"
    .byte   {0x64 if magic else 0x58}
    .long   0
"""
    return MACROS + "\n    .global _start\n" + header + r"""
code:
    mov     x19, x0
    orr     x20, x1, x2
    orr     x20, x20, x3
    adr     x23, _start
    mrs     x24, CurrentEL
    ldr     x1, =0x09000000
    mov     x0, x19
    put_hex_x0 64
    mov     w2, #' '
    strb    w2, [x1]
    mov     x0, x20
    put_hex_x0 64
    mov     w2, #' '
    strb    w2, [x1]
    mov     x0, x23
    put_hex_x0 64
    mov     w2, #' '
    strb    w2, [x1]
    lsr     x0, x24, #2
    put_hex_x0 4
    mov     w2, #' '
    strb    w2, [x1]
    mov     x0, x19
    cbnz    x0, 1f
    ldr     x0, =0x40000000             // no DTB in x0: look at RAM base
1:  ldr     w0, [x0]
    put_hex_x0 32
    mov     w2, #'\n'
    strb    w2, [x1]
    system_off_any_el
    .ltorg
"""


def build(tmp_path, name: str, *, elf_base: int | None = None, **hdr) -> str:
    """The probe as a flat binary (an arm64 Image, or raw without the magic), or as an
    ELF linked at `elf_base`."""
    src = probe_source(**hdr)
    if elf_base is not None:
        return str(assemble(tmp_path, name, src, elf_base))
    elf = assemble(tmp_path, name, src, 0)
    out = tmp_path / f"{name}.bin"
    subprocess.run([need_tool(CROSS + "objcopy"), "-O", "binary", str(elf), str(out)], check=True)
    return str(out)


def qemu_boot(*, kernel=None, initrd=None, append=None, dtb=None, bios=None, ram="128M", el2=False,
              dumpdtb=None) -> subprocess.CompletedProcess:
    need_qemu()
    from neve.qemu import qemu_binary
    machine = "virt,gic-version=3" + (",virtualization=on" if el2 else "")
    cmd = [qemu_binary(), "-M", machine, "-cpu", "cortex-a72", "-m", ram, "-nographic", "-monitor", "none",
           "-serial", "stdio", "-no-reboot"]
    for opt, v in (("-kernel", kernel), ("-initrd", initrd), ("-append", append), ("-dtb", dtb), ("-bios", bios)):
        if v is not None:
            cmd += [opt, str(v)]
    if dumpdtb is not None:
        cmd += ["-machine", f"dumpdtb={dumpdtb}"]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)


def neve_boot(*, kernel=None, initrd=None, append=None, dtb=None, bios=None, ram="128M", mode="vm",
              kernel_addr=None, extra=()) -> subprocess.CompletedProcess:
    args = ["run", "--mode", mode, "--ram", ram]
    for opt, v in (("--kernel", kernel), ("--initrd", initrd), ("--append", append), ("--dtb", dtb),
                   ("--bios", bios), ("--kernel-addr", kernel_addr)):
        if v is not None:
            args += [opt, str(v)]
    return run_neve(*args, *extra, timeout=60)


def both(expected: str | None = None, *, mode="vm", **kw) -> str:
    """The probe's line on neve and on QEMU (equal), checked against `expected`."""
    r = neve_boot(mode=mode, **kw)
    assert r.returncode == 0, r.stderr.decode()
    line = r.stdout.decode()
    if expected is not None:
        assert line == expected + "\n"
    q = qemu_boot(el2=mode != "vm", **kw)
    assert q.returncode == 0, q.stderr.decode()
    assert q.stdout.decode() == line
    return line


def rd(tmp_path, size: int = 3_000_000) -> str:
    p = tmp_path / "initrd.bin"
    p.write_bytes(bytes((i * 7 + 3) & 0xFF for i in range(256)) * (size // 256) + b"x" * (size % 256))
    return str(p)


ZERO = "0" * 16
DTB_MAGIC = "edfe0dd0"      # d0 0d fe ed read as a little-endian word


# --- placement, against QEMU ----------------------------------------------------------------

@pytest.mark.parametrize("hdr, load", [
    (dict(text_offset=0), 0x4020_0000),                 # below 4 KiB: + 2 MiB
    (dict(text_offset=0x8_0000), 0x4008_0000),
    (dict(text_offset=0x1000), 0x4000_1000),            # 4 KiB: as asked
    (dict(text_offset=0x20_0000, image_size=0), 0x4008_0000),    # image_size 0: text_offset ignored
    (dict(magic=False), 0x4008_0000),                   # raw binary
])
def test_image_placement(tmp_path, hdr, load):
    k = build(tmp_path, "probe", **hdr)
    both(f"{0x4400_0000:016x} {ZERO} {load:016x} 1 {DTB_MAGIC}", kernel=k)


def test_gzip_image(tmp_path):
    k = build(tmp_path, "probe")
    gz = tmp_path / "probe.gz"
    gz.write_bytes(gzip.compress(Path(k).read_bytes(), mtime=0))
    both(f"{0x4400_0000:016x} {ZERO} {0x4020_0000:016x} 1 {DTB_MAGIC}", kernel=gz)


@pytest.mark.parametrize("ram, with_initrd, dtb", [
    ("128M", True, 0x4440_0000),        # initrd at RAM/2, DTB after it on 2 MiB
    ("512M", False, 0x4800_0000),       # initrd slot at 128 MiB
    ("1G", True, 0x4840_0000),
])
def test_initrd_and_dtb_follow_ram_size(tmp_path, ram, with_initrd, dtb):
    k = build(tmp_path, "probe")
    both(f"{dtb:016x} {ZERO} {0x4020_0000:016x} 1 {DTB_MAGIC}", kernel=k, ram=ram,
         initrd=rd(tmp_path) if with_initrd else None)


def test_large_image_size_pushes_initrd_and_dtb(tmp_path):
    k = build(tmp_path, "probe", image_size=0x500_0000)     # ends at 0x45200000, past RAM/2
    both(f"{0x4520_0000:016x} {ZERO} {0x4020_0000:016x} 1 {DTB_MAGIC}", kernel=k)
    both(f"{0x4560_0000:016x} {ZERO} {0x4020_0000:016x} 1 {DTB_MAGIC}", kernel=k, initrd=rd(tmp_path))


@pytest.mark.parametrize("mode", ["v8.3", "neve", "nv2"])
def test_nested_modes_start_at_el2(tmp_path, mode):
    k = build(tmp_path, "probe")
    both(f"{0x4400_0000:016x} {ZERO} {0x4020_0000:016x} 2 {DTB_MAGIC}", kernel=k, mode=mode)


@pytest.mark.parametrize("base, magic", [
    (0x4008_0000, "00000000"),      # 512 KiB below it: QEMU's 1 MiB DTB does not fit there
    (0x4020_0000, DTB_MAGIC),       # room at RAM base: the DTB goes there, x0 stays 0
])
def test_elf_kernel(tmp_path, base, magic):
    k = build(tmp_path, "probe", elf_base=base)
    both(f"{ZERO} {ZERO} {base:016x} 1 {magic}", kernel=k)


def test_bios_starts_at_0_with_the_dtb_at_ram_base(tmp_path):
    k = build(tmp_path, "probe")
    both(f"{ZERO} {ZERO} {ZERO} 1 {DTB_MAGIC}", bios=k)


def test_initrd_bytes_and_chosen(tmp_path):
    """The initrd's bytes are where /chosen says, and /chosen is QEMU's."""
    import libfdt
    from neve import boot
    from neve.core.machine import Machine
    k, r = build(tmp_path, "probe"), rd(tmp_path)
    images, how = boot.prepare(kernel=k, initrd=r, append="console=ttyAMA0 quiet", dtb=None, bios=None,
                               kernel_addr=None, ram_size=128 << 20)
    m = Machine(images, boot=how)
    fdt = libfdt.Fdt(m.dtb)
    chosen = fdt.path_offset("/chosen")
    start = fdt.getprop(chosen, "linux,initrd-start").as_uint64()
    end = fdt.getprop(chosen, "linux,initrd-end").as_uint64()
    data = Path(r).read_bytes()
    assert (start, end) == (0x4400_0000, 0x4400_0000 + len(data))
    assert bytes(m.ram[start - 0x4000_0000:end - 0x4000_0000]) == data
    assert fdt.getprop(chosen, "bootargs").as_str() == "console=ttyAMA0 quiet"
    # The DTB itself is at x0's address: QEMU's boot stub at RAM base loads it.
    assert bytes(m.ram[0x18:0x28]) == struct.pack("<QQ", 0x4440_0000, 0x4020_0000)
    off = 0x4440_0000 - 0x4000_0000
    assert bytes(m.ram[off:off + len(m.dtb)]) == m.dtb
    q = qemu_boot(kernel=k, initrd=r, append="console=ttyAMA0 quiet", dumpdtb=tmp_path / "q.dtb")
    assert q.returncode == 0, q.stderr.decode()
    qf = libfdt.Fdt((tmp_path / "q.dtb").read_bytes())
    qc = qf.path_offset("/chosen")
    for prop in ("linux,initrd-start", "linux,initrd-end", "bootargs", "stdout-path"):
        assert bytes(qf.getprop(qc, prop)) == bytes(fdt.getprop(chosen, prop)), prop


def test_boot_stub_is_qemus(tmp_path):
    """RAM base holds QEMU's 40-byte AArch64 boot stub, the CPU starts on it."""
    from neve import boot
    from neve.core.machine import Machine
    k = build(tmp_path, "probe")
    images, how = boot.prepare(kernel=k, initrd=None, append=None, dtb=None, bios=None, kernel_addr=None,
                               ram_size=128 << 20)
    m = Machine(images, boot=how)
    assert m.cpu.pc == 0x4000_0000
    words = struct.unpack("<6I", bytes(m.ram[:24]))
    assert words == (0x580000C0, 0xAA1F03E1, 0xAA1F03E2, 0xAA1F03E3, 0x58000084, 0xD61F0080)


def test_kernel_addr_for_raw_binary(tmp_path):
    k = build(tmp_path, "probe", magic=False)
    r = neve_boot(kernel=k, kernel_addr="0x41000000")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode() == f"{0x4400_0000:016x} {ZERO} {0x4100_0000:016x} 1 {DTB_MAGIC}\n"


def test_positional_images_still_run():
    from conftest import image
    r = run_neve("run", image("hello"))
    assert r.returncode == 0, r.stderr.decode()


def test_deterministic(tmp_path):
    k = build(tmp_path, "probe")
    a = neve_boot(kernel=k, initrd=rd(tmp_path), append="x", extra=["--stats", tmp_path / "a.json"])
    b = neve_boot(kernel=k, initrd=rd(tmp_path), append="x", extra=["--stats", tmp_path / "b.json"])
    assert a.stdout == b.stdout and a.returncode == b.returncode == 0
    import json
    ja, jb = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    ja.pop("host", None), jb.pop("host", None)
    assert ja["instructions"] == jb["instructions"]


# --- bad input --------------------------------------------------------------------------------

def bad(r: subprocess.CompletedProcess, *words: str) -> str:
    assert r.returncode == EXIT_BAD_INPUT, (r.returncode, r.stderr)
    line = one_line_error(r)
    for w in words:
        assert w in line, line
    return line


def efi_image(tmp_path, cut: int | None) -> str:
    """An arm64 Image with a PE header (as CONFIG_EFI builds it) whose one section's
    raw data ends at 0x3000; `cut` truncates the file."""
    hdr = bytearray(0x3000)
    hdr[0:4] = b"MZ\x00\x91"
    struct.pack_into("<QQQ", hdr, 8, 0, 0x4000, 0xA)       # text_offset, image_size, flags (LE, 4K)
    hdr[0x38:0x3C] = b"ARM\x64"
    struct.pack_into("<I", hdr, 0x3C, 0x40)                 # PE header offset
    hdr[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", hdr, 0x44, 0xAA64, 1, 0, 0, 0, 0xA0, 0x206)   # COFF header
    struct.pack_into("<HBB", hdr, 0x58, 0x20B, 2, 20)       # optional header magic PE32+
    struct.pack_into("<I", hdr, 0x58 + 32, 0x1000)          # SectionAlignment
    struct.pack_into("<I", hdr, 0x58 + 36, 0x200)           # FileAlignment
    struct.pack_into("<I", hdr, 0x58 + 56, 0x4000)          # SizeOfImage
    struct.pack_into("<I", hdr, 0x58 + 60, 0x1000)          # SizeOfHeaders
    sec = 0x58 + 0xA0
    hdr[sec:sec + 8] = b".text\0\0\0"
    struct.pack_into("<IIII", hdr, sec + 8, 0x2000, 0x1000, 0x2000, 0x1000)   # vsize, vaddr, rawsize, rawptr
    p = tmp_path / "efi.Image"
    p.write_bytes(bytes(hdr if cut is None else hdr[:cut]))
    return str(p)


def test_efi_image_whole_is_accepted(tmp_path):
    from neve.boot.image import load_kernel
    k = load_kernel(efi_image(tmp_path, None))
    assert (k.kind, k.image_size) == ("image", 0x4000)


@pytest.mark.parametrize("cut", [0x2800, 0x200, 40])
def test_truncated_image(tmp_path, cut):
    bad(neve_boot(kernel=efi_image(tmp_path, cut)), "truncated arm64 Image")


def test_truncated_gzip(tmp_path):
    k = build(tmp_path, "probe")
    gz = gzip.compress(Path(k).read_bytes())
    p = tmp_path / "cut.gz"
    p.write_bytes(gz[:len(gz) // 2])
    bad(neve_boot(kernel=p), "truncated gzip")


def test_gzip_that_is_not_an_image(tmp_path):
    p = tmp_path / "text.gz"
    p.write_bytes(gzip.compress(b"hello, world\n" * 10))
    bad(neve_boot(kernel=p), "gzip", "not hold an arm64 Linux Image")


def test_corrupt_gzip(tmp_path):
    p = tmp_path / "junk.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 64)
    bad(neve_boot(kernel=p), "gzip")


def test_big_endian_image(tmp_path):
    bad(neve_boot(kernel=build(tmp_path, "probe", flags=1)), "big-endian")


def test_dtb_that_is_not_a_dtb(tmp_path):
    p = tmp_path / "x.dtb"
    p.write_bytes(b"not a device tree at all" * 10)
    bad(neve_boot(kernel=build(tmp_path, "probe"), dtb=p), "--dtb", "not a device tree")


def test_corrupt_dtb(tmp_path):
    q = qemu_boot(dumpdtb=tmp_path / "q.dtb")
    assert q.returncode == 0
    blob = bytearray((tmp_path / "q.dtb").read_bytes())
    off = struct.unpack_from(">I", blob, 8)[0]          # off_dt_struct
    blob[off:off + 4] = b"\x00\x00\x00\x07"             # not an FDT token
    p = tmp_path / "bad.dtb"
    p.write_bytes(bytes(blob))
    bad(neve_boot(kernel=build(tmp_path, "probe"), dtb=p), "--dtb", "malformed")
    p.write_bytes(bytes(blob[:200]))
    bad(neve_boot(kernel=build(tmp_path, "probe"), dtb=p), "--dtb")


def test_kernel_larger_than_ram(tmp_path):
    k = build(tmp_path, "probe", image_size=0x900_0000)     # 144 MiB
    bad(neve_boot(kernel=k), "too large to fit in RAM")
    assert "too large to fit in RAM" in qemu_boot(kernel=k).stderr.decode()


def test_kernel_leaving_no_room_for_the_dtb(tmp_path):
    k = build(tmp_path, "probe", image_size=0x7D0_0000)     # 125 MiB
    bad(neve_boot(kernel=k), "not enough space for the device tree")
    q = qemu_boot(kernel=k)
    assert q.returncode != 0 and "Not enough space for DTB" in q.stderr.decode()


def test_initrd_overlapping_the_kernel(tmp_path):
    """An Image whose file runs past its header's image_size, into the initrd's place:
    QEMU refuses the overlapping ROM regions, neve too."""
    k = build(tmp_path, "probe")
    with open(k, "r+b") as f:
        f.truncate(70 << 20)
    r = rd(tmp_path)
    bad(neve_boot(kernel=k, initrd=r), "initrd", "overlaps the kernel")
    assert "overlap" in qemu_boot(kernel=k, initrd=r).stderr.decode()


def test_initrd_too_big(tmp_path):
    bad(neve_boot(kernel=build(tmp_path, "probe"), initrd=rd(tmp_path, 100_000_000)), "too big to fit into RAM")


@pytest.mark.parametrize("opt", ["kernel", "initrd", "dtb", "bios"])
def test_missing_file(tmp_path, opt):
    kw = {} if opt in ("kernel", "bios") else {"kernel": build(tmp_path, "probe")}
    kw[opt] = tmp_path / "nope"
    bad(neve_boot(**kw), f"--{opt}", "no such file")


def test_directory_as_kernel(tmp_path):
    bad(neve_boot(kernel=tmp_path), "--kernel", "directory")


def test_empty_kernel(tmp_path):
    p = tmp_path / "empty"
    p.write_bytes(b"")
    bad(neve_boot(kernel=p), "empty")


@pytest.mark.parametrize("kw, words", [
    (dict(kernel_addr="0x41000000"), ["--kernel-addr", "raw binaries"]),
    (dict(initrd="INITRD", elf=True), ["--initrd", "ELF"]),
    (dict(bios="K"), ["--kernel with --bios"]),
])
def test_bad_combinations(tmp_path, kw, words):
    k = build(tmp_path, "probe", elf_base=0x4020_0000) if kw.pop("elf", False) else build(tmp_path, "probe")
    kw = {n: (k if v == "K" else rd(tmp_path) if v == "INITRD" else v) for n, v in kw.items()}
    bad(neve_boot(kernel=k, **kw), *words)


@pytest.mark.parametrize("args, words", [
    (["--initrd", "x"], ["--initrd needs --kernel"]),
    (["--append", "x"], ["--append needs --kernel"]),
    (["--kernel-addr", "nope"], ["--kernel-addr"]),
    ([], ["nothing to run"]),
])
def test_bad_options(args, words):
    bad(run_neve("run", *args), *words)


def test_kernel_addr_outside_ram(tmp_path):
    bad(neve_boot(kernel=build(tmp_path, "probe", magic=False), kernel_addr="0x1000"), "outside RAM")


def test_bios_too_big(tmp_path):
    p = tmp_path / "big.fd"
    with open(p, "wb") as f:
        f.truncate((64 << 20) + 4)
    bad(neve_boot(bios=p), "--bios", "flash bank 0")


def test_uboot_legacy_image_refused(tmp_path):
    p = tmp_path / "uImage"
    p.write_bytes(struct.pack(">I", 0x27051956) + bytes(60))
    bad(neve_boot(kernel=p), "uImage")


def test_dtb_needs_kernel_or_bios(tmp_path):
    from conftest import image
    p = tmp_path / "q.dtb"
    assert qemu_boot(dumpdtb=p).returncode == 0
    bad(run_neve("run", "--dtb", p, image("hello")), "--dtb needs --kernel or --bios")


FLASH_WRITER = MACROS + r"""
    .global _start
_start:
    ldr     x1, =0x09000000
    mov     x7, #0x100
    ldr     w0, [x7]                    // flash reads: what --bios put there (0 past the file)
    put_hex_x0 32
    mov     w2, #'\n'
    strb    w2, [x1]
    mov     w0, #0x98                   // CFI "read query": a write to the flash
    str     w0, [x7]
    system_off_any_el
    .ltorg
"""


def test_bios_flash_command_leaves_read_array_mode(tmp_path):
    """A CFI command written by the firmware to its own bank (neve/devices/pflash.py)
    takes the bank out of read-array mode: its next instruction cannot be fetched from
    the flash any more (QEMU would execute the query data), which stops the run as
    unsupported, naming the flash."""
    elf = assemble(tmp_path, "fw", FLASH_WRITER, 0)
    fw = tmp_path / "fw.bin"
    subprocess.run([need_tool(CROSS + "objcopy"), "-O", "binary", str(elf), str(fw)], check=True)
    r = neve_boot(bios=fw)
    assert r.returncode == 125, r.stderr
    assert r.stdout == b"00000000\n"
    err = one_line_error(r)
    assert "unsupported: instruction fetch from the QEMU virt flash at address 0x44 at PC 0x44" in err, err
