"""The device tree of the board neve models, built with libfdt (pylibfdt's FdtSw) with
QEMU 10 `virt`'s node names, compatibles, interrupt numbers and phandles
(hw/arm/virt.c, gic-version=3, one cortex-a72), and the checks of a user's `--dtb`.

What the generator writes, from the Machine:

* the root: "linux,dummy-virt", #address-cells = #size-cells = 2, interrupt-parent =
  the GIC, dma-coherent;
* /psci: PSCI 1.0/0.2 function IDs, method "hvc" when the kernel starts at EL1 (vm
  mode) and "smc" when it starts at (virtual) EL2 (the nested modes), as QEMU;
* /memory@40000000: the RAM;
* /cpus: one cpu@N per vCPU (compatible "arm,cortex-a72", reg = MPIDR affinity) and the
  cpu-map; enable-method "psci" only with more than one CPU (QEMU leaves it out for
  one);
* /timer: the secure, non-secure, virtual and EL2 hyp timer PPIs (13, 14, 11, 10);
* /pmu: PPI 7 (INTID 23), neve's PMUv3;
* /intc@8000000: GICv3 distributor and the redistributor region QEMU reserves;
  the maintenance interrupt (PPI 9) only when the kernel starts at EL2;
* /pl011@9000000 with the 24 MHz /apb-pclk clock, /aliases serial0;
* /chosen: bootargs (--append), stdout-path, linux,initrd-start/-end (64-bit cells).
  No kaslr-seed and no rng-seed (QEMU's are random; neve's runs are deterministic):
  the tree is QEMU's with `-M virt,dtb-randomness=off`, and the kernel boots without
  KASLR ("KASLR disabled due to lack of seed").

Every other device of `machine.devices` with a `describe(sw, phandles)` method adds
its own node, in ascending base order, with `sw` positioned inside the root node (or
inside /intc@8000000 when the device has `dt_parent = "intc"`, as the GICv3 ITS is).
`phandles` maps names to the values already given ("apb-pclk", "cpu0"..., "gic") and
`phandles.alloc(name)` hands out the next one, in the order QEMU does (its counter
starts at 0x8000: clock, CPUs, GIC, ITS, then GPIO).

QEMU describes nothing else neve has; what QEMU lists and neve lacks (the ITS, fw-cfg,
PCIe, the empty platform bus) is left out until a device describes itself.
"""
from __future__ import annotations

import libfdt

from neve.arch.modes import NESTED_MODES
from neve.arch.platform import GICD_BASE, GICR_BASE, RAM_BASE
from neve.devices.pl011 import PL011
from neve.errors import BadInput

FDT_SIZE = 1 << 20                  # QEMU virt's blob size (the generated tree's totalsize)
PHANDLE_START = 0x8000              # QEMU's first phandle (qemu_fdt_alloc_phandle)
GICD_SIZE = 0x1_0000
GICR_REGION_SIZE = 0xF6_0000        # virt's VIRT_GIC_REDIST region (123 redistributors)
APB_PCLK_HZ = 24_000_000

# interrupt-specifier cells of the GICv3 binding
GIC_SPI, GIC_PPI = 0, 1
IRQ_EDGE_RISING, IRQ_LEVEL_HIGH = 1, 4
PPI_MAINT = 9                       # INTID 25
PPI_PMU = 7                         # INTID 23
TIMER_PPIS = (13, 14, 11, 10)       # secure phys, non-secure phys, virtual, EL2 hyp (INTIDs 29, 30, 27, 26)
UART_SPI = 1                        # INTID 33

PSCI_FN = (("migrate", 0xC400_0005), ("cpu_on", 0xC400_0003), ("cpu_off", 0x8400_0002), ("cpu_suspend", 0xC400_0001))


class Phandles(dict):
    """Names to phandles; `alloc` gives the next value, as QEMU's counter does."""

    def __init__(self) -> None:
        super().__init__()
        self._next = PHANDLE_START

    def alloc(self, name: str) -> int:
        if name in self:
            raise ValueError(f"phandle {name!r} allocated twice")
        self[name] = self._next
        self._next += 1
        return self[name]


def _cells(*vals: int) -> bytes:
    return b"".join(v.to_bytes(4, "big") for v in vals)


def _reg(*pairs: tuple[int, int]) -> bytes:
    """A reg property with #address-cells = #size-cells = 2."""
    return b"".join(_cells(a >> 32, a & 0xFFFF_FFFF, s >> 32, s & 0xFFFF_FFFF) for a, s in pairs)


def _strings(*s: str) -> bytes:
    return b"".join(x.encode() + b"\0" for x in s)


def _node(sw: libfdt.FdtSw, name: str, props: list[tuple[str, bytes]]) -> None:
    sw.begin_node(name)
    for k, v in props:
        sw.property(k, v)
    sw.end_node()


def _describers(machine, parent: str | None) -> list:
    devs = [d for d in machine.devices if callable(getattr(d, "describe", None))
            and getattr(d, "dt_parent", None) == parent]
    return sorted(devs, key=lambda d: d.base)


def generate(machine, *, bootargs: str | None = None, initrd: tuple[int, int] | None = None) -> bytes:
    """The device tree blob (totalsize 1 MiB, as QEMU's) for `machine`."""
    at_el2 = machine.mode in NESTED_MODES
    ph = Phandles()
    ph.alloc("apb-pclk")
    ncpus = len(machine.vcpus)
    for i in range(ncpus):
        ph.alloc(f"cpu{i}")
    ph.alloc("gic")
    gic = ph["gic"]

    sw = libfdt.FdtSw()
    sw.finish_reservemap()
    sw.begin_node("")
    sw.property_u32("interrupt-parent", gic)
    sw.property("dma-coherent", b"")
    sw.property_string("model", "linux,dummy-virt")
    sw.property_u32("#size-cells", 2)
    sw.property_u32("#address-cells", 2)
    sw.property_string("compatible", "linux,dummy-virt")

    _node(sw, "psci", [*((k, _cells(v)) for k, v in PSCI_FN),
                       ("method", _strings("smc" if at_el2 else "hvc")),
                       ("compatible", _strings("arm,psci-1.0", "arm,psci-0.2", "arm,psci"))])
    _node(sw, f"memory@{RAM_BASE:x}", [("reg", _reg((RAM_BASE, machine.ram_size))),
                                       ("device_type", _strings("memory"))])

    # The devices at an address, in ascending order: neve's own (UART, GIC) and those
    # that describe themselves.
    uart = next((d for d in machine.devices if isinstance(d, PL011)), None)
    nodes = [(d.base, "describe", d) for d in _describers(machine, None)]
    if uart is not None:
        nodes.append((uart.base, "uart", uart))
    nodes.append((GICD_BASE, "gic", None))
    for _, kind, dev in sorted(nodes, key=lambda n: n[0]):
        if kind == "describe":
            dev.describe(sw, ph)
        elif kind == "uart":
            _node(sw, f"pl011@{dev.base:x}", [
                ("clock-names", _strings("uartclk", "apb_pclk")),
                ("clocks", _cells(ph["apb-pclk"], ph["apb-pclk"])),
                ("interrupts", _cells(GIC_SPI, UART_SPI, IRQ_LEVEL_HIGH)),
                ("reg", _reg((dev.base, 0x1000))),
                ("compatible", _strings("arm,pl011", "arm,primecell"))])
        else:
            sw.begin_node(f"intc@{GICD_BASE:x}")
            sw.property_u32("phandle", gic)
            sw.property("reg", _reg((GICD_BASE, GICD_SIZE), (GICR_BASE, GICR_REGION_SIZE)))
            sw.property_u32("#redistributor-regions", 1)
            sw.property_string("compatible", "arm,gic-v3")
            sw.property("ranges", b"")
            sw.property_u32("#size-cells", 2)
            sw.property_u32("#address-cells", 2)
            sw.property("interrupt-controller", b"")
            sw.property_u32("#interrupt-cells", 3)
            if at_el2:
                sw.property("interrupts", _cells(GIC_PPI, PPI_MAINT, IRQ_LEVEL_HIGH))
            for d in _describers(machine, "intc"):
                d.describe(sw, ph)
            sw.end_node()

    _node(sw, "pmu", [("interrupts", _cells(GIC_PPI, PPI_PMU, IRQ_LEVEL_HIGH)),
                      ("compatible", _strings("arm,armv8-pmuv3"))])

    sw.begin_node("cpus")
    sw.property_u32("#size-cells", 0)
    sw.property_u32("#address-cells", 1)
    sw.begin_node("cpu-map")
    sw.begin_node("socket0")
    sw.begin_node("cluster0")
    for i in range(ncpus):
        _node(sw, f"core{i}", [("cpu", _cells(ph[f"cpu{i}"]))])
    sw.end_node()
    sw.end_node()
    sw.end_node()
    for i, v in enumerate(machine.vcpus):
        aff = v.cpu.read_sysreg("MPIDR_EL1") & 0xFF_00FF_FFFF
        sw.begin_node(f"cpu@{aff:x}")
        sw.property_u32("phandle", ph[f"cpu{i}"])
        if ncpus > 1:
            sw.property_string("enable-method", "psci")
        sw.property_u32("reg", aff)
        sw.property_string("compatible", "arm,cortex-a72")
        sw.property_string("device_type", "cpu")
        sw.end_node()
    sw.end_node()

    _node(sw, "timer", [("interrupts", b"".join(_cells(GIC_PPI, p, IRQ_LEVEL_HIGH) for p in TIMER_PPIS)),
                        ("always-on", b""),
                        ("compatible", _strings("arm,armv8-timer", "arm,armv7-timer"))])
    _node(sw, "apb-pclk", [("phandle", _cells(ph["apb-pclk"])),
                           ("clock-output-names", _strings("clk24mhz")),
                           ("clock-frequency", _cells(APB_PCLK_HZ)),
                           ("#clock-cells", _cells(0)),
                           ("compatible", _strings("fixed-clock"))])
    chosen: list[tuple[str, bytes]] = []
    if uart is not None:
        _node(sw, "aliases", [("serial0", _strings(f"/pl011@{uart.base:x}"))])
        chosen.append(("stdout-path", _strings(f"/pl011@{uart.base:x}")))
    if bootargs:
        chosen.append(("bootargs", _strings(bootargs)))
    if initrd is not None:
        chosen += [("linux,initrd-start", _cells(initrd[0] >> 32, initrd[0] & 0xFFFF_FFFF)),
                   ("linux,initrd-end", _cells(initrd[1] >> 32, initrd[1] & 0xFFFF_FFFF))]
    _node(sw, "chosen", chosen)
    sw.end_node()
    fdt = sw.as_fdt()
    fdt.resize(FDT_SIZE)
    return bytes(fdt.as_bytearray())


def validate(blob: bytes, name: str) -> bytes:
    """A user's device tree blob, checked with libfdt (header, structure, a root node)."""
    if len(blob) < 40 or blob[:4] != b"\xd0\x0d\xfe\xed":
        raise BadInput(f"--dtb {name}: not a device tree blob (no FDT magic d00dfeed)")
    try:
        fdt = libfdt.Fdt(blob)                          # checks the header
        if fdt.totalsize() > len(blob):
            raise BadInput(f"--dtb {name}: truncated device tree blob ({len(blob)} bytes, its header says "
                           f"{fdt.totalsize()})")
        off, depth = 0, 0
        while off >= 0 and depth >= 0:                  # every node and property: the structure block
            fdt.get_name(off)
            p = fdt.first_property_offset(off, [libfdt.NOTFOUND])
            while p >= 0:
                fdt.get_property_by_offset(p)
                p = fdt.next_property_offset(p, [libfdt.NOTFOUND])
            off, depth = fdt.next_node(off, depth, [libfdt.NOTFOUND])
    except libfdt.FdtException as e:
        raise BadInput(f"--dtb {name}: malformed device tree blob ({e})") from None
    return blob


def open_like_qemu(blob: bytes) -> bytes:
    """A `-dtb` as QEMU's load_device_tree opens it: in a buffer of twice (its file size
    + 10000 bytes), which becomes its totalsize, so that the guest sees the same blob
    size (U-Boot's bdinfo prints it, and places itself by it)."""
    fdt = libfdt.Fdt(blob)
    fdt.resize(2 * (len(blob) + 10000))
    return bytes(fdt.as_bytearray())


def patch_chosen(blob: bytes, *, bootargs: str | None, initrd: tuple[int, int] | None) -> bytes:
    """What QEMU's arm_load_dtb does to a `-dtb`: /chosen's bootargs (when -append is
    given) and linux,initrd-start/-end (when -initrd is); nothing else is changed."""
    if not bootargs and initrd is None:
        return blob
    fdt = libfdt.Fdt(blob)                  # opened with QEMU's slack (open_like_qemu)
    try:
        chosen = fdt.path_offset("/chosen", [libfdt.NOTFOUND])
        if chosen < 0:
            chosen = fdt.add_subnode(0, "chosen")
        if bootargs:
            fdt.setprop_str(chosen, "bootargs", bootargs)
        if initrd is not None:
            fdt.setprop_u64(chosen, "linux,initrd-start", initrd[0])
            fdt.setprop_u64(chosen, "linux,initrd-end", initrd[1])
    except libfdt.FdtException as e:        # e.g. an --append longer than QEMU's slack leaves room for
        raise BadInput(f"--dtb: cannot update /chosen ({e})") from None
    return bytes(fdt.as_bytearray())
