"""`--timeline FILE.json`: the world switches of a run in Chrome trace-event format.

The file opens in Perfetto (ui.perfetto.dev) and chrome://tracing.  It is built from
the event stream only (Trap, Switch, Hypercall events):

* one track (tid) per level: L0, vEL2 (L1, the guest hypervisor), and the contexts L1
  runs at EL1/EL0 (its nested VM; its own host-kernel part for a split-mode hypervisor
  such as kvmlike); in vm mode L0 and the VM;
* a complete event ("ph": "X") for each stay at a level: a stay ends at a change of
  level (Switch) and at every trap, since the CPU leaves for L0;
* on the L0 track, a fixed-width span for each trap (L0 handling it), so the exit
  multiplication of a nested hypercall is visible at a glance;
* an instant event ("ph": "i") for each trap on the track of the level that trapped,
  with args: class, name, reason, rw, value, pc, symbol, icount, forwarded;
* a "hypercalls" track with one span per guest hypercall (begin to the guest
  running again).

Time: the trace's "ts" unit is the microsecond; one guest instruction is one
microsecond, and each trap adds `l0_width` microseconds of L0 time (default 10)
during which no guest level runs.  So ts = icount + l0_width x (traps before it);
every event carries the raw instruction count in args.icount.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import json

from neve.observe import events as ev
from neve.errors import BadInput

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine

L0_WIDTH = 10
PID = 1

TRACKS = {   # key -> (tid, name)
    "L0": (1, "L0 (host hypervisor)"),
    "vEL2": (2, "vEL2 (L1, guest hypervisor)"),
    "vEL1-host": (3, "EL1 (L1's host kernel)"),
    "nested-VM": (4, "EL1/EL0 (nested VM, L2)"),
    "VM": (4, "EL1/EL0 (the VM)"),
    "hypercalls": (9, "hypercalls (guest's view)"),
}
LEVEL_LABEL = {"L0": "L0", "vEL2": "vEL2", "vEL1-host": "L1 host kernel", "nested-VM": "nested VM", "VM": "VM"}


class Timeline:
    def __init__(self, machine: Machine, *, l0_width: int = L0_WIDTH) -> None:
        self.m = machine
        self.l0_width = l0_width
        self.events: list[dict] = []
        self.hypercalls: list[tuple[int, int]] = []     # (begin ts, end ts)
        self.shift = 0
        self.track = "vEL2" if machine.vel2 is not None else "VM"
        self.start = machine.icount()
        self.entered_by = "reset"
        self._hc_begin: tuple[int, int] | None = None
        self._closed = False
        bus = machine.bus
        bus.subscribe(ev.Trap, self._trap)
        bus.subscribe(ev.Switch, self._switch)
        bus.subscribe(ev.Hypercall, self._hypercall)

    def ts(self, icount: int) -> int:
        return icount + self.shift

    def _span(self, track: str, name: str, ts: int, dur: int, args: dict) -> None:
        self.events.append({"name": name, "cat": "level" if track != "L0" else "l0", "ph": "X", "ts": ts,
                            "dur": dur, "pid": PID, "tid": TRACKS[track][0], "args": args})

    def _close(self, now: int) -> None:
        if now > self.start:
            self._span(self.track, LEVEL_LABEL[self.track], self.start, now - self.start,
                       {"entered_by": self.entered_by})

    def _trap(self, t: ev.Trap) -> None:
        now = self.ts(t.icount)
        self._close(now)
        args = {"class": t.cls, "name": t.name, "reason": t.reason, "rw": t.rw or None,
                "value": None if t.value is None else f"{t.value:#x}",
                "pc": None if t.pc is None else f"{t.pc:#x}",
                "symbol": t.symbol or (None if t.pc is None else self.m.symbols.lookup(t.pc)),
                "level": t.level, "icount": t.icount, "forwarded": t.forwarded}
        self.events.append({"name": f"{t.cls}: {t.name}", "cat": "trap", "ph": "i", "s": "t", "ts": now,
                            "pid": PID, "tid": TRACKS[self.track][0], "args": args})
        self._span("L0", f"L0: {t.name}", now, self.l0_width, args)
        self.shift += self.l0_width
        self.start = now + self.l0_width
        self.entered_by = f"return from L0 ({t.name})"

    def _switch(self, s: ev.Switch) -> None:
        now = self.ts(s.icount)
        self._close(now)
        if s.dst == "vEL2":
            self.track = "vEL2"
        elif self.m.vel2 is not None:
            self.track = self.m.vel2.guest_id()
        else:
            self.track = "VM"
        self.start = now
        self.entered_by = f"{s.src} -> {s.dst} ({s.why})"

    def _hypercall(self, h: ev.Hypercall) -> None:
        now = self.ts(h.icount)
        if h.phase == "begin":
            self._hc_begin = (now, h.icount)
        elif self._hc_begin is not None:
            (b, ib), self._hc_begin = self._hc_begin, None
            self.hypercalls.append((b, now))
            self.events.append({"name": f"hypercall {len(self.hypercalls)} ({h.guest})", "cat": "hypercall",
                                "ph": "X", "ts": b, "dur": now - b, "pid": PID, "tid": TRACKS["hypercalls"][0],
                                "args": {"guest": h.guest, "icount": ib, "instructions": h.icount - ib}})

    def finish(self) -> None:
        if not self._closed:
            self._close(self.ts(self.m.icount()))
            self._closed = True

    def document(self) -> dict:
        self.finish()
        used = {e["tid"] for e in self.events}
        meta = [{"name": "process_name", "ph": "M", "ts": 0, "pid": PID, "tid": 0,
                 "args": {"name": f"neve --mode {self.m.mode} ({', '.join(im.name for im in self.m.images)})"}}]
        for key, (tid, name) in TRACKS.items():
            if tid in used and not (key == "VM" and self.m.vel2 is not None) \
                    and not (key == "nested-VM" and self.m.vel2 is None):
                meta.append({"name": "thread_name", "ph": "M", "ts": 0, "pid": PID, "tid": tid, "args": {"name": name}})
                meta.append({"name": "thread_sort_index", "ph": "M", "ts": 0, "pid": PID, "tid": tid,
                             "args": {"sort_index": tid}})
        return {
            "traceEvents": meta + self.events,
            "otherData": {
                "mode": self.m.mode,
                "time_unit": "ts in microseconds: 1 guest instruction = 1 us, plus l0_trap_width us per trap",
                "l0_trap_width": self.l0_width,
                "instructions": self.m.icount(),
            },
        }

    def write(self, path) -> None:
        try:
            with open(path, "w") as f:
                json.dump(self.document(), f)
                f.write("\n")
        except OSError as e:
            raise BadInput(f"--timeline {path}: {e.strerror}") from None
