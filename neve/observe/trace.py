"""--trace: one JSON object per trap, written as the run goes."""
from __future__ import annotations

import json

from neve.arch import decode
from neve.errors import BadInput
from neve.observe import events as ev


class TraceWriter:
    """--trace: one JSON object per trap."""

    def __init__(self, path: str, machine) -> None:
        try:
            self.f = open(path, "w")
        except OSError as e:
            raise BadInput(f"--trace {path}: {e.strerror}") from None
        self.m = machine
        machine.bus.subscribe(ev.Trap, self.trap)

    def trap(self, t: ev.Trap) -> None:
        insn = t.insn
        if insn is None and t.pc is not None and t.cls not in (ev.MMIO,):
            insn = self.m.cpu.read_insn(t.pc)
        rec = {
            "seq": t.seq, "icount": t.icount,
            "pc": None if t.pc is None else f"{t.pc:#x}",
            "symbol": t.symbol or (None if t.pc is None else self.m.symbols.lookup(t.pc)),
            "level": t.level, "real_el": t.real_el, "class": t.cls, "name": t.name,
            "rw": t.rw or None, "value": None if t.value is None else f"{t.value:#x}",
            "insn": None if insn is None else f"{insn:#010x}",
            "disasm": None if insn is None or t.pc is None else decode.disasm(insn, t.pc),
            "reason": t.reason, "forwarded": t.forwarded,
        }
        self.f.write(json.dumps(rec) + "\n")

    def close(self) -> None:
        self.f.close()
