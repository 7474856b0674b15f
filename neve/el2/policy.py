"""Custom classifications: explore the design space the NEVE paper opened.

A policy file (TOML) starts from one of the nested modes and reclassifies registers
accessed from virtual EL2 as `trap` (to L0), `redirect` (to the EL1 register that
holds L1's vEL2 context, no trap) or `memory` (logged to the NEVE/VNCR page, no trap):

    # my-policy.toml
    base = "neve"            # v8.3 | neve | nv2 (default neve)
    [registers]
    CPTR_EL2 = "redirect"
    MDCR_EL2 = "memory"
    CNTHCTL_EL2 = "trap"

A policy that cannot be built in hardware is refused with a one-line reason: an
unknown register, an unknown class, a register that is not a hypervisor register,
`redirect` for a register with no EL1 twin, or `memory` for a register whose value
takes effect immediately (e.g. SCTLR_EL2, which translates vEL2's own next access).
"""
from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from neve.arch import sysregs
from neve.arch.modes import NESTED_MODES, Access
from neve.errors import BadInput

CLASSES = {"trap": Access.TRAP, "redirect": Access.REDIRECT, "memory": Access.MEM}
BASES = NESTED_MODES



@dataclass
class Policy:
    name: str
    base: str
    overrides: dict[str, str] = field(default_factory=dict)   # register -> "trap" | "redirect" | "mem"

    def access(self, row: sysregs.SysReg, write: bool) -> str:
        """What an access from vEL2 does under this policy."""
        act = self.overrides.get(row.name)
        return act if act is not None else sysregs.vel2_access(row, write, self.base)

    def describe(self) -> dict:
        return {"name": self.name, "base": self.base,
                "overrides": {k: ("memory" if v == "mem" else v) for k, v in sorted(self.overrides.items())}}


def redirect_target(row: sysregs.SysReg) -> str | None:
    if row.group != "el2":
        return None
    return row.redirect or row.shadow


def check(name: str, cls: str) -> str:
    """Validate one reclassification; returns the access kind or raises ValueError."""
    row = sysregs.BY_NAME.get(name)
    if row is None:
        close = difflib.get_close_matches(name, sysregs.BY_NAME, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown register {name!r}{hint}")
    if cls not in CLASSES:
        raise ValueError(f"{name}: unknown class {cls!r} (choose trap, redirect or memory)")
    if row.group in ("special", "id"):
        raise ValueError(f"{name}: not a register whose accesses a hypervisor policy classifies")
    if row.group == "el12":
        raise ValueError(f"{name}: _EL12/_EL02 encodings are UNDEFINED for a non-VHE guest hypervisor")
    if cls == "redirect" and redirect_target(row) is None:
        raise ValueError(f"{name}: impossible class 'redirect': it has no EL1 register to be redirected to")
    if cls == "memory" and row.immediate:
        # A write that only lands in memory (read by L0 at the next trap) would be
        # architecturally wrong for a register whose value takes effect at once.
        raise ValueError(f"{name}: impossible class 'memory': {row.immediate}")
    if cls == "trap" and row.group not in ("el2",) and not row.traps:
        raise ValueError(f"{name}: impossible class 'trap': no architected control traps it from EL1")
    return CLASSES[cls]


def load(path: str | Path) -> Policy:
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise BadInput(f"policy {p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"policy {p}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"policy {p}: not valid TOML: {e}") from None
    unknown = set(doc) - {"base", "registers", "name"}
    if unknown:
        raise BadInput(f"policy {p}: unknown key {sorted(unknown)[0]!r} (expected base, name, registers)")
    base = doc.get("base", "neve")
    if base not in BASES:
        raise BadInput(f"policy {p}: base {base!r} must be one of {', '.join(BASES)}")
    regs = doc.get("registers", {})
    if not isinstance(regs, dict):
        raise BadInput(f"policy {p}: [registers] must be a table of REGISTER = \"class\"")
    overrides = {}
    for name, cls in regs.items():
        if not isinstance(cls, str):
            raise BadInput(f"policy {p}: {name}: class must be a string")
        try:
            overrides[name] = check(name, cls)
        except ValueError as e:
            raise BadInput(f"policy {p}: {e}") from None
    return Policy(str(doc.get("name", p.stem)), base, overrides)
