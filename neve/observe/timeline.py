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
  running again);
* with several CPUs (--smp), one process (pid) per CPU holding its own tracks, on
  the machine's one time axis (the CPUs run in turns of a quantum; a CPU's stay at a
  level spans the other CPUs' turns, as CPUs run side by side); a CPU's first stay
  begins when PSCI CPU_ON starts it.

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


class _Cpu:
    """One CPU's place in the timeline: the level it is at since when, and why."""

    def __init__(self, pid: int, track: str, start: int, entered_by: str) -> None:
        self.pid, self.track, self.start, self.entered_by = pid, track, start, entered_by
        self.hc_begin: tuple[int, int] | None = None


class Timeline:
    def __init__(self, machine: Machine, *, l0_width: int = L0_WIDTH) -> None:
        self.m = machine
        self.l0_width = l0_width
        self.events: list[dict] = []
        self.hypercalls: list[tuple[int, int]] = []     # (begin ts, end ts)
        self.shift = 0
        self._cpus: dict[int, _Cpu] = {}
        self._closed = False
        bus = machine.bus
        bus.subscribe(ev.Trap, self._trap)
        bus.subscribe(ev.Switch, self._switch)
        bus.subscribe(ev.Hypercall, self._hypercall)
        self._cpu(machine.vcpus[0])

    def _cpu(self, v=None) -> _Cpu:
        """The running CPU's state (a CPU first seen starts at its PSCI CPU_ON, CPU 0 now)."""
        v = self.m.vcpu if v is None else v
        c = self._cpus.get(v.index)
        if c is None:
            track = "vEL2" if v.vel2 is not None else "VM"
            start = self.m.icount() if v.index == 0 else v.started_at
            c = self._cpus[v.index] = _Cpu(PID + v.index, track, self.ts(start),
                                           "reset" if v.index == 0 else "PSCI CPU_ON")
        return c

    def ts(self, icount: int) -> int:
        return icount + self.shift

    def _span(self, c: _Cpu, track: str, name: str, ts: int, dur: int, args: dict) -> None:
        self.events.append({"name": name, "cat": "level" if track != "L0" else "l0", "ph": "X", "ts": ts,
                            "dur": dur, "pid": c.pid, "tid": TRACKS[track][0], "args": args})

    def _close(self, c: _Cpu, now: int) -> None:
        if now > c.start:
            self._span(c, c.track, LEVEL_LABEL[c.track], c.start, now - c.start, {"entered_by": c.entered_by})

    def _trap(self, t: ev.Trap) -> None:
        c = self._cpu()
        now = self.ts(t.icount)
        self._close(c, now)
        args = {"class": t.cls, "name": t.name, "reason": t.reason, "rw": t.rw or None,
                "value": None if t.value is None else f"{t.value:#x}",
                "pc": None if t.pc is None else f"{t.pc:#x}",
                "symbol": t.symbol or (None if t.pc is None else self.m.symbols.lookup(t.pc)),
                "level": t.level, "icount": t.icount, "forwarded": t.forwarded}
        self.events.append({"name": f"{t.cls}: {t.name}", "cat": "trap", "ph": "i", "s": "t", "ts": now,
                            "pid": c.pid, "tid": TRACKS[c.track][0], "args": args})
        self._span(c, "L0", f"L0: {t.name}", now, self.l0_width, args)
        self.shift += self.l0_width
        c.start = now + self.l0_width
        c.entered_by = f"return from L0 ({t.name})"

    def _switch(self, s: ev.Switch) -> None:
        c = self._cpu()
        now = self.ts(s.icount)
        self._close(c, now)
        if s.dst == "vEL2":
            c.track = "vEL2"
        elif self.m.vel2 is not None:
            c.track = self.m.vel2.guest_id()
        else:
            c.track = "VM"
        c.start = now
        c.entered_by = f"{s.src} -> {s.dst} ({s.why})"

    def _hypercall(self, h: ev.Hypercall) -> None:
        c = self._cpu()
        now = self.ts(h.icount)
        if h.phase == "begin":
            c.hc_begin = (now, h.icount)
        elif c.hc_begin is not None:
            (b, ib), c.hc_begin = c.hc_begin, None
            self.hypercalls.append((b, now))
            self.events.append({"name": f"hypercall {len(self.hypercalls)} ({h.guest})", "cat": "hypercall",
                                "ph": "X", "ts": b, "dur": now - b, "pid": c.pid, "tid": TRACKS["hypercalls"][0],
                                "args": {"guest": h.guest, "icount": ib, "instructions": h.icount - ib}})

    def finish(self) -> None:
        if not self._closed:
            now = self.ts(self.m.icount())
            for c in self._cpus.values():
                self._close(c, now)
            self._closed = True

    def document(self) -> dict:
        self.finish()
        title = f"neve --mode {self.m.mode} ({', '.join(im.name for im in self.m.images)})"
        smp = len(self.m.vcpus) > 1
        meta = []
        for i, c in sorted(self._cpus.items()):
            used = {e["tid"] for e in self.events if e["pid"] == c.pid}
            meta.append({"name": "process_name", "ph": "M", "ts": 0, "pid": c.pid, "tid": 0,
                         "args": {"name": f"CPU {i}: {title}" if smp else title}})
            if smp:
                meta.append({"name": "process_sort_index", "ph": "M", "ts": 0, "pid": c.pid, "tid": 0,
                             "args": {"sort_index": c.pid}})
            for key, (tid, name) in TRACKS.items():
                if tid in used and not (key == "VM" and self.m.vel2 is not None) \
                        and not (key == "nested-VM" and self.m.vel2 is None):
                    meta.append({"name": "thread_name", "ph": "M", "ts": 0, "pid": c.pid, "tid": tid,
                                 "args": {"name": name}})
                    meta.append({"name": "thread_sort_index", "ph": "M", "ts": 0, "pid": c.pid, "tid": tid,
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
