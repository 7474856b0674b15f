"""The generated device tree (neve/boot/dtb.py) against QEMU 10's own
(`-M virt,gic-version=3[,virtualization=on] -cpu cortex-a72 -machine dumpdtb=`).

QEMU runs with `dtb-randomness=off` (no random kaslr-seed and rng-seed in /chosen,
which neve never writes).  Every node neve writes must be in QEMU's tree with the same
properties, byte for byte; every node of QEMU's that neve leaves out must be a device
neve does not model (yet).
"""
from __future__ import annotations

import re
import subprocess

import libfdt
import pytest

from conftest import EXIT_BAD_INPUT, need_qemu, one_line_error, run_neve

# QEMU virt nodes for devices neve does not model (a device that describes itself
# adds its node, and the comparison then checks it like the others).
UNMODELLED = re.compile(r"^/(intc@8000000/its@8080000|pl061@9030000|gpio-keys(/.*)?|pl031@9010000|fw-cfg@9020000"
                        r"|virtio_mmio@a00[0-3][0-9a-f]{3}|pcie@10000000|flash@0|platform-bus@c000000)$")


def tree(blob: bytes) -> dict[str, dict[str, bytes]]:
    """{node path: {property: value}} of a blob, read with libfdt."""
    fdt = libfdt.Fdt(blob)
    out: dict[str, dict[str, bytes]] = {}
    off, depth = 0, 0
    while off >= 0 and depth >= 0:
        props = {}
        p = fdt.first_property_offset(off, [libfdt.NOTFOUND])
        while p >= 0:
            prop = fdt.get_property_by_offset(p)
            props[prop.name] = bytes(prop)
            p = fdt.next_property_offset(p, [libfdt.NOTFOUND])
        out[fdt.get_path(off)] = props
        off, depth = fdt.next_node(off, depth, [libfdt.NOTFOUND])
    return out


def qemu_dtb(tmp_path, *, el2=False, ram="128M", extra=()) -> bytes:
    need_qemu()
    from neve.qemu import qemu_binary
    out = tmp_path / ("q-el2.dtb" if el2 else "q.dtb")
    machine = "virt,gic-version=3,dtb-randomness=off" + (",virtualization=on" if el2 else "")
    r = subprocess.run([qemu_binary(), "-M", machine, "-cpu", "cortex-a72", "-m", ram, "-nographic",
                        "-machine", f"dumpdtb={out}", *map(str, extra)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return out.read_bytes()


def neve_dtb(tmp_path, *args) -> bytes:
    out = tmp_path / "n.dtb"
    r = run_neve("run", "--dumpdtb", out, *args)
    assert r.returncode == 0 and r.stderr == b"", r.stderr.decode()
    return out.read_bytes()


def compare(neve: bytes, qemu: bytes) -> None:
    n, q = tree(neve), tree(qemu)
    for path, props in n.items():
        assert path in q, f"{path}: not in QEMU's tree"
        assert props == q[path], path
    missing = sorted(p for p in q if p not in n)
    assert all(UNMODELLED.match(p) for p in missing), [p for p in missing if not UNMODELLED.match(p)]


@pytest.mark.parametrize("mode, el2", [("vm", False), ("v8.3", True), ("neve", True), ("nv2", True)])
def test_matches_qemu(tmp_path, mode, el2):
    compare(neve_dtb(tmp_path, "--mode", mode), qemu_dtb(tmp_path, el2=el2))


def test_psci_conduit_and_maintenance_irq(tmp_path):
    vm, el2 = tree(neve_dtb(tmp_path)), tree(neve_dtb(tmp_path, "--mode", "nv2"))
    assert vm["/psci"]["method"] == b"hvc\0" and el2["/psci"]["method"] == b"smc\0"
    assert "interrupts" not in vm["/intc@8000000"]
    assert el2["/intc@8000000"]["interrupts"] == bytes.fromhex("00000001 00000009 00000004")
    # the EL2 hyp timer (PPI 10) is there in both
    assert bytes.fromhex("00000001 0000000a 00000004") in vm["/timer"]["interrupts"]


@pytest.mark.parametrize("ram", ["512M", "1G"])
def test_memory_follows_ram(tmp_path, ram):
    compare(neve_dtb(tmp_path, "--ram", ram), qemu_dtb(tmp_path, ram=ram))


def test_chosen_with_kernel_initrd_append(tmp_path):
    """/chosen as QEMU writes it for -kernel -initrd -append (placement included)."""
    from test_boot_loader import build, rd
    k, r = build(tmp_path, "probe"), rd(tmp_path)
    n = neve_dtb(tmp_path, "--kernel", k, "--initrd", r, "--append", "console=ttyAMA0 rdinit=/init")
    q = qemu_dtb(tmp_path, extra=["-kernel", k, "-initrd", r, "-append", "console=ttyAMA0 rdinit=/init"])
    compare(n, q)
    assert set(tree(n)["/chosen"]) == {"stdout-path", "bootargs", "linux,initrd-start", "linux,initrd-end"}


def test_qemu_sized_and_deterministic(tmp_path):
    a = neve_dtb(tmp_path, "--mode", "neve")
    b = neve_dtb(tmp_path, "--mode", "neve")
    assert a == b
    assert len(a) == libfdt.Fdt(a).totalsize() == 1 << 20


def test_devices_describe_themselves():
    """A device with describe() gets its node, in ascending base order, with the next
    phandle (QEMU's order: clock, CPU, GIC, then the devices); one with dt_parent =
    "intc" goes inside the GIC's node."""
    from neve.boot import dtb
    from neve.core.machine import Machine
    from neve.devices import Device

    class Fake(Device):
        def __init__(self, base, name, parent=None):
            self.base, self.size, self.node, self.dt_parent = base, 0x1000, name, parent

        def read(self, off, size):
            return 0

        def write(self, off, size, value):
            pass

        def describe(self, sw, phandles):
            sw.begin_node(f"{self.node}@{self.base:x}")
            sw.property_u32("phandle", phandles.alloc(self.node))
            sw.property_u32("gic", phandles["gic"])
            sw.property_u32("clk", phandles["apb-pclk"])
            sw.end_node()

    from conftest import image
    from neve.core import elf
    m = Machine([elf.load(image("hello"))])
    m.add_device(Fake(0x0906_0000, "late"))
    m.add_device(Fake(0x0905_0000, "early"))
    m.add_device(Fake(0x0808_0000, "its", "intc"))
    t = tree(dtb.generate(m))
    order = [p for p in t if p.count("/") == 1 or p.startswith("/intc")]
    assert order.index("/intc@8000000") < order.index("/pl011@9000000") < order.index("/pl061@9030000") \
        < order.index("/early@9050000") < order.index("/late@9060000")
    assert t["/intc@8000000/its@8080000"]["phandle"] == (0x8003).to_bytes(4, "big")
    assert t["/pl061@9030000"]["phandle"] == (0x8004).to_bytes(4, "big")     # the board's own GPIO
    assert t["/early@9050000"]["phandle"] == (0x8005).to_bytes(4, "big")
    assert t["/late@9060000"]["phandle"] == (0x8006).to_bytes(4, "big")
    assert t["/late@9060000"]["gic"] == (0x8002).to_bytes(4, "big")
    assert t["/late@9060000"]["clk"] == (0x8000).to_bytes(4, "big")


def test_user_dtb_used_as_is(tmp_path):
    from neve import boot
    from neve.core.machine import Machine
    from test_boot_loader import build
    q = qemu_dtb(tmp_path)
    p = tmp_path / "user.dtb"
    p.write_bytes(q)
    images, how = boot.prepare(kernel=build(tmp_path, "probe"), initrd=None, append=None, dtb=str(p), bios=None,
                               kernel_addr=None, ram_size=128 << 20)
    m = Machine(images, boot=how)
    # Opened as QEMU's load_device_tree opens a -dtb: in twice (file size + 10000)
    # bytes, its new totalsize; the tree itself unchanged.
    size = 2 * (len(q) + 10000)
    assert len(m.dtb) == size and libfdt.Fdt(m.dtb).totalsize() == size
    assert tree(m.dtb) == tree(q)
    assert bytes(m.ram[0x0400_0000:0x0400_0000 + size]) == m.dtb


def test_user_dtb_chosen_updated_as_qemu(tmp_path):
    """QEMU's arm_load_dtb sets /chosen's bootargs and initrd range in a -dtb too."""
    from test_boot_loader import build, rd
    k, r = build(tmp_path, "probe"), rd(tmp_path)
    p = tmp_path / "user.dtb"
    p.write_bytes(qemu_dtb(tmp_path))
    n = tree(neve_dtb(tmp_path, "--kernel", k, "--initrd", r, "--append", "hello", "--dtb", p))
    q = tree(qemu_dtb(tmp_path, extra=["-kernel", k, "-initrd", r, "-append", "hello", "-dtb", p]))
    for prop in ("bootargs", "linux,initrd-start", "linux,initrd-end"):
        assert n["/chosen"][prop] == q["/chosen"][prop], prop


def test_dumpdtb_unwritable(tmp_path):
    r = run_neve("run", "--dumpdtb", tmp_path / "no" / "such" / "dir.dtb")
    assert r.returncode == EXIT_BAD_INPUT
    assert "--dumpdtb" in one_line_error(r)


def test_validate_accepts_qemus_and_refuses_garbage(tmp_path):
    from neve.boot.dtb import validate
    from neve.errors import BadInput
    q = qemu_dtb(tmp_path)
    assert validate(q, "q") == q
    for blob in (b"", b"\xd0\x0d\xfe\xed" + bytes(36), q[:100], b"x" * 100):
        with pytest.raises(BadInput):
            validate(blob, "x")
