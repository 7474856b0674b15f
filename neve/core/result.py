"""How a run ends: the Result, and the exception a hook raises to end the run with one."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Result:
    reason: str          # system-off | system-reset | semihosting-exit | quit (Ctrl-A x) | budget | timeout | unsupported | guest-error
    status: int
    message: str = ""


class Stop(Exception):
    """Raised inside a hook to end the run (carries the result)."""

    def __init__(self, result: Result):
        self.result = result
