"""Running fuzz cases: every mode of neve, QEMU when present, and the verdicts.

Each neve run is `neve run` itself (neve.cli.main) in a forked child of a worker
process, so a run costs no interpreter start, and the child's exit status, stdout,
stderr, host time and peak RSS are those a user would see.  A run is:

* clean: exit 0; 124 (budget or timeout); 125 with a one-line "unsupported: <what>
  at PC <pc>"; 126 "guest wedged"; the class of each is kept;
* a defect: a Python traceback or any stderr that is not one `neve:` line; exit
  126 for an internal error; any other status; a hang (no exit within the hard
  limit, then killed); a peak RSS above the limit.

Then, per case:
* the nested modes (v8.3, neve, nv2) must agree: every one of them runs the same
  guest hypervisor on the same architecture, so the same transcript and status (a
  mode that stopped with 125 is left out).  A disagreement is a defect.
* with QEMU, the transcript of each mode that completed (exit 0) is compared with
  QEMU's for the same starting EL (vm with QEMU at EL1, the nested modes with QEMU
  at EL2 as the ground truth), on the cases QEMU also completed.  A divergence is
  minimised to its first differing line, which names the slot, hence the
  instructions; its *class* is what that slot does with the numbers taken out, and
  neve/fuzz/known.py says whether it is one of the understood departures from the
  Arm ARM (QEMU's or neve's).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from neve.fuzz.case import Case
from neve.fuzz.gen import generate
from neve.fuzz.known import explain
from neve import launch
from neve.arch.modes import MODES as ALL_MODES, NESTED_MODES
from neve.qemu import QemuTimeout, qemu_binary, run_qemu_full

MODES, NESTED = ALL_MODES, NESTED_MODES
QEMU_CPU = "cortex-a72"


@dataclass
class Run:
    mode: str
    status: int | None           # None: killed after the hard time limit
    out: str
    err: str
    seconds: float
    rss_kb: int = 0
    verdict: str = ""            # ok | budget | timeout | unsupported | wedged | defect
    why: str = ""                # the class of an unsupported/defect/... verdict


@dataclass
class Divergence:
    mode: str
    line: int
    neve: str
    qemu: str
    slot: str                    # "b03"
    what: str                    # the slot's note
    cls: str
    known: str | None = None     # the class in neve/fuzz/known.py that explains it


@dataclass
class CaseReport:
    seed: int
    runs: dict[str, Run] = field(default_factory=dict)
    qemu: dict[str, Run] = field(default_factory=dict)     # "el1", "el2"
    defects: list[str] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)
    agreements: list[str] = field(default_factory=list)   # modes that matched QEMU
    listing: str = ""


@dataclass
class Options:
    modes: tuple[str, ...] = MODES
    budget: int = 2_000_000
    timeout: float = 20.0        # neve's --timeout; the hard limit is twice this plus 10 s
    rss_limit_mb: int = 1024
    qemu: bool = False
    qemu_timeout: float = 5.0
    keep: Path | None = None     # write the case image and transcripts of interesting cases here
    harness: Path | None = None


# --- one neve run in a forked child -------------------------------------------------------
def run_neve(image: Path, mode: str, opts: Options, tmp: Path) -> Run:
    out_p, err_p = tmp / f"{mode}.out", tmp / f"{mode}.err"
    argv = ["run", "--mode", mode, "--max-insns", str(opts.budget), "--timeout", str(opts.timeout), str(image)]
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:                                   # the child: `neve run`, as from a shell
        rc = 126
        try:
            fo = os.open(out_p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            fe = os.open(err_p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fo, 1)
            os.dup2(fe, 2)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)     # no UART input from the fuzzer's stdin
            sys.stdout = os.fdopen(1, "w", closefd=False)
            sys.stderr = os.fdopen(2, "w", closefd=False)
            rc = launch.run_main(argv[1:])
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:
            import traceback
            traceback.print_exc()
            rc = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(rc if isinstance(rc, int) else 1)
    hard = 2 * opts.timeout + 10
    status = None
    rss = 0
    while True:
        wpid, wstatus, usage = os.wait4(pid, os.WNOHANG)
        if wpid:
            status = os.waitstatus_to_exitcode(wstatus)
            rss = usage.ru_maxrss
            break
        if time.monotonic() - t0 > hard:
            os.kill(pid, signal.SIGKILL)
            _, wstatus, usage = os.wait4(pid, 0)
            rss = usage.ru_maxrss
            break
        time.sleep(0.005)
    secs = time.monotonic() - t0
    out = out_p.read_bytes().decode("latin-1")
    err = err_p.read_bytes().decode("utf-8", "replace")
    r = Run(mode, status, out, err, secs, rss)
    classify(r, opts)
    return r


_ADDR = re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{8,16}\b")


def normalise(msg: str) -> str:
    """A message with its addresses and numbers taken out: the class of a verdict."""
    return _ADDR.sub("N", msg.strip())


def classify(r: Run, opts: Options) -> None:
    err_lines = [ln for ln in r.err.splitlines() if ln.strip()]
    one_line = len(err_lines) <= 1 and all(ln.startswith("neve: ") for ln in err_lines)
    msg = err_lines[-1][6:] if err_lines and err_lines[-1].startswith("neve: ") else (err_lines[-1] if err_lines else "")
    if r.status is None:
        r.verdict, r.why = "defect", f"hang: no exit after {2 * opts.timeout + 10:.0f} s"
    elif "Traceback" in r.err:
        r.verdict, r.why = "defect", "traceback: " + (err_lines[-1] if err_lines else "")
    elif r.rss_kb > opts.rss_limit_mb * 1024:
        r.verdict, r.why = "defect", f"RSS {r.rss_kb // 1024} MiB above {opts.rss_limit_mb} MiB"
    elif not one_line:
        r.verdict, r.why = "defect", "stderr is not one neve line: " + " | ".join(err_lines[:3])
    elif r.status == 0:
        r.verdict = "ok"
    elif r.status == 124:
        r.verdict = "timeout" if "timeout" in msg else "budget"
        r.why = normalise(msg)
    elif r.status == 125 and msg.startswith("unsupported: ") and " at PC " in msg:
        r.verdict, r.why = "unsupported", normalise(msg.split(" at PC ")[0])
    elif r.status == 126 and msg.startswith("guest wedged"):
        r.verdict, r.why = "wedged", normalise(msg)
    else:
        r.verdict, r.why = "defect", f"exit {r.status}: {normalise(msg)}"


# --- QEMU -------------------------------------------------------------------------------------
def run_qemu_case(image: Path, el2: bool, opts: Options) -> Run:
    t0 = time.monotonic()
    try:
        q = run_qemu_full([image], el2=el2, semihosting=True, timeout=opts.qemu_timeout, cpu=QEMU_CPU)
    except QemuTimeout as e:
        return Run("qemu-el2" if el2 else "qemu-el1", None, e.stdout.decode("latin-1"), "", time.monotonic() - t0,
                   verdict="timeout")
    return Run("qemu-el2" if el2 else "qemu-el1", q.status, q.stdout.decode("latin-1"), "",
               time.monotonic() - t0, verdict="ok" if q.status == 0 else f"exit {q.status}")


# --- comparing transcripts ---------------------------------------------------------------------
_SLOT = re.compile(r"^([ab])([0-9a-f]{2})")


def first_difference(a: str, b: str) -> tuple[int, str, str] | None:
    la, lb = a.splitlines(), b.splitlines()
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else "<end>"
        y = lb[i] if i < len(lb) else "<end>"
        if x != y:
            return i, x, y
    return None


def divergence(case: Case, mode: str, neve_out: str, qemu_out: str) -> Divergence | None:
    d = first_difference(neve_out, qemu_out)
    if d is None:
        return None
    i, x, y = d
    # The first slot that behaved differently is the earlier of the two lines' slots.
    ms = [m for m in (_SLOT.match(x), _SLOT.match(y)) if m]
    m = min(ms, key=lambda m: (m.group(1), m.group(2))) if ms else None
    slot = m.group(0) if m else "-"
    what = ""
    if m:
        s = case.slot(m.group(1), int(m.group(2), 16))
        what = s.note if s else ""
    if x.startswith(slot) and y.startswith(slot) and " = " in x and " = " in y:
        kind = "value"
    elif " = " in x or " = " in y:
        kind = "exception vs value"
    elif _SLOT.match(x) and _SLOT.match(y) and x[:3] != y[:3]:
        kind = "different slots"
    else:
        kind = "syndrome"
    return Divergence(mode, i + 1, x, y, slot, what, f"{kind}: {normalise(what) or x}")


# --- one case -----------------------------------------------------------------------------------
def run_case(seed: int, opts: Options, case: Case | None = None) -> CaseReport:
    case = case or generate(seed, opts.harness)
    rep = CaseReport(seed, listing=case.listing())
    with tempfile.TemporaryDirectory(prefix="neve-fuzz-") as d:
        tmp = Path(d)
        image = case.write(tmp / f"case-{seed:x}.elf", *([opts.harness] if opts.harness else []))
        for mode in opts.modes:
            r = run_neve(image, mode, opts, tmp)
            rep.runs[mode] = r
            if r.verdict == "defect":
                rep.defects.append(f"{mode}: {r.why}")
        _check_nested_agree(rep)
        if opts.qemu:
            # Only transcripts of runs that completed are compared: QEMU runs only for
            # those (a kernel neve found wedged would keep QEMU until its timeout).
            done = [m for m, r in rep.runs.items() if r.verdict == "ok"]
            want = {"el1": "vm" in done, "el2": any(m in NESTED for m in done)}
            for key, on in want.items():
                if on:
                    rep.qemu[key] = run_qemu_case(image, key == "el2", opts)
            for mode, r in rep.runs.items():
                q = rep.qemu.get("el1" if mode == "vm" else "el2")
                if q is None or q.verdict != "ok" or r.verdict != "ok":
                    continue
                dv = divergence(case, mode, r.out, q.out)
                if dv is None:
                    rep.agreements.append(mode)
                else:
                    dv.known = explain(dv, case)
                    rep.divergences.append(dv)
        if opts.keep is not None and (rep.defects or rep.divergences):
            keep = Path(opts.keep) / f"{seed:x}"
            keep.mkdir(parents=True, exist_ok=True)
            (keep / image.name).write_bytes(image.read_bytes())
            (keep / "case.txt").write_text(rep.listing + "\n")
            for mode, r in rep.runs.items():
                (keep / f"{mode}.out").write_text(r.out)
                (keep / f"{mode}.err").write_text(r.err)
            for k, q in rep.qemu.items():
                (keep / f"qemu-{k}.out").write_text(q.out)
    return rep


def _check_nested_agree(rep: CaseReport) -> None:
    runs = [rep.runs[m] for m in NESTED if m in rep.runs and rep.runs[m].verdict in ("ok", "budget", "wedged")]
    for r in runs[1:]:
        a = runs[0]
        if (a.status, a.out) != (r.status, r.out):
            d = first_difference(a.out, r.out)
            where = f"line {d[0] + 1}: {a.mode} {d[1]!r} vs {r.mode} {d[2]!r}" if d else \
                f"status {a.status} vs {r.status}"
            rep.defects.append(f"modes disagree: {a.mode} and {r.mode}, {where}")


def qemu_available() -> bool:
    q = qemu_binary()
    if q is None:
        return False
    try:
        v = subprocess.run([q, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    m = re.search(r"version (\d+)", v)
    return bool(m and int(m.group(1)) >= 10)
