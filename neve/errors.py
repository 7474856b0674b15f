"""Errors and the documented exit codes of the `neve` command."""
from __future__ import annotations

# Exit codes (documented in the README).  A guest that shuts down sets its own
# status: 0 after PSCI SYSTEM_OFF/SYSTEM_RESET, the code of a semihosting exit.
EXIT_OK = 0
EXIT_BAD_INPUT = 2        # bad command line, unreadable or unsuitable image
EXIT_BUDGET = 124         # --max-insns or --timeout exhausted
EXIT_UNSUPPORTED = 125    # the guest did something neve does not emulate
EXIT_GUEST_ERROR = 126    # the guest wedged itself (e.g. an exception loop at reset vectors)


class NeveError(Exception):
    """An error that ends a run with a one-line message and an exit code."""

    exit_code = EXIT_GUEST_ERROR
    reason = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadInput(NeveError):
    exit_code = EXIT_BAD_INPUT
    reason = "bad-input"


class Unsupported(NeveError):
    """The guest did something neve does not emulate.  The message must name the
    instruction or register and the PC."""

    exit_code = EXIT_UNSUPPORTED
    reason = "unsupported"

    def __init__(self, what: str, pc: int | None = None):
        where = f" at PC {pc:#x}" if pc is not None else ""
        super().__init__(f"unsupported: {what}{where}")


class GuestError(NeveError):
    exit_code = EXIT_GUEST_ERROR
    reason = "guest-error"


class Wedged(GuestError):
    """The guest stopped itself for good: a WFI that nothing can ever wake, the only
    CPU turned off.  QEMU would wait for ever; neve says so and stops."""

    def __init__(self, what: str, pc: int | None = None):
        where = f" at PC {pc:#x}" if pc is not None else ""
        super().__init__(f"guest wedged: {what}{where}")
