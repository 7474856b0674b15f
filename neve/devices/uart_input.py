"""Where the PL011's receive side gets its characters: a file, or the host's stdin.

A source hands the UART *characters*: a byte, or `BREAK` (a break condition, which
the PL011 receives as DR bit 10, BE).  The UART asks for them only at points the
guest causes (neve/devices/pl011.py): when it reads FR or DR and finds its receive
FIFO empty, or waits in WFI with the receive interrupt enabled.  So a run fed from a
file is reproducible: the same image and the same file give the same transcript,
trap counts and virtual time.

- `FileInput`: the bytes of a file (`--uart-input FILE`), read whole at the start.
  When they are all delivered the guest sees no more data.
- `StreamInput`: a terminal, a pipe or a socket (stdin by default): `take` delivers
  what the host has already received (never blocks), `wait` blocks for more.  On a
  terminal the input is in raw mode (as QEMU's stdio character device: no echo, no
  line editing, no CR/NL translation, XON/XOFF off; ISIG kept, so Ctrl-C still
  interrupts neve) and the terminal's settings are restored when neve ends, on every
  exit path.  Ctrl-A is the escape key, as with QEMU's `-serial mon:stdio`:
  Ctrl-A x quits, Ctrl-A h prints the keys, Ctrl-A b sends a break, Ctrl-A Ctrl-A
  sends a Ctrl-A; any other key after Ctrl-A is dropped.
"""
from __future__ import annotations

import atexit
import os
import select
import signal
import stat
import sys
from collections import deque

from neve.core.result import Result, Stop
from neve.errors import BadInput

BREAK = 0x400            # a break condition: the PL011's DR.BE, as QEMU's CHR_EVENT_BREAK
CTRL_A = 0x01

HELP = ("\r\nC-a h    print this help\r\n"
        "C-a x    exit neve\r\n"
        "C-a b    send break\r\n"
        "C-a C-a  sends C-a\r\n")


class UartInput:
    """The interface the PL011 uses."""
    live = False          # more may arrive from outside while the guest runs

    def take(self, n: int) -> list[int]:
        """Up to `n` characters received so far (never blocks)."""
        raise NotImplementedError

    def wait(self, timeout: float | None) -> bool:
        """Block up to `timeout` seconds of host time (None: for ever) until a
        character can be taken; False at the end of the input or on timeout."""
        raise NotImplementedError

    @property
    def exhausted(self) -> bool:
        """Nothing more will ever arrive."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class FileInput(UartInput):
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @classmethod
    def from_path(cls, path: str) -> "FileInput":
        try:
            with open(path, "rb") as f:
                return cls(f.read())
        except OSError as e:
            raise BadInput(f"--uart-input {path}: {e.strerror}") from None

    def take(self, n: int) -> list[int]:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return list(chunk)

    def wait(self, timeout: float | None) -> bool:
        return self.pos < len(self.data)

    @property
    def exhausted(self) -> bool:
        return self.pos >= len(self.data)


class StreamInput(UartInput):
    """A file descriptor read as data arrives (a terminal, a pipe, a socket)."""
    live = True

    def __init__(self, fd: int, *, tty: bool = False, err=None, owned: bool = False) -> None:
        self.fd = fd
        self.owned = owned                 # opened for --uart-input: closed by close(); stdin is not
        self.tty = tty
        self.err = err if err is not None else sys.stderr
        self.queue: deque[int] = deque()
        self.eof = False
        self._escape = False
        self._saved = None                 # the terminal's attributes before raw mode
        self._raw_attrs = None
        self._old_handlers: dict = {}
        if tty:
            self._raw()

    # --- the terminal ---------------------------------------------------------------------
    def _raw(self) -> None:
        import termios
        self._saved = termios.tcgetattr(self.fd)
        self._raw_attrs = self._make_raw(termios.tcgetattr(self.fd))
        termios.tcsetattr(self.fd, termios.TCSANOW, self._raw_attrs)
        atexit.register(self.close)
        # A signal that ends the process restores the terminal first; Ctrl-Z (SIGTSTP)
        # restores it while neve is stopped, SIGCONT makes it raw again.
        for sig, h in ((signal.SIGTERM, self._on_signal), (signal.SIGHUP, self._on_signal),
                       (signal.SIGQUIT, self._on_signal), (signal.SIGTSTP, self._on_stop),
                       (signal.SIGCONT, self._on_cont)):
            try:
                self._old_handlers[sig] = signal.signal(sig, h)
            except (ValueError, OSError):          # not the main thread
                pass

    @staticmethod
    def _make_raw(new: list) -> list:
        import termios
        # What QEMU's stdio chardev does (qemu_chr_set_echo_stdio with echo off).
        new[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                    | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
        new[1] |= termios.OPOST
        new[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.IEXTEN)
        new[2] = (new[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        new[6][termios.VMIN] = 1
        new[6][termios.VTIME] = 0
        return new

    def _on_signal(self, signum, _frame) -> None:
        self.close()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def _on_stop(self, _signum, _frame) -> None:
        import termios
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        os.kill(os.getpid(), signal.SIGSTOP)

    def _on_cont(self, _signum, _frame) -> None:
        import termios
        if self._saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSANOW, self._raw_attrs)
            except termios.error:
                pass

    def close(self) -> None:
        """Give the terminal its settings back, and close a descriptor this source
        opened (idempotent)."""
        if self._saved is not None:
            import termios
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            except termios.error:
                pass
            self._saved = None
            for sig, h in self._old_handlers.items():
                try:
                    signal.signal(sig, h)
                except (ValueError, OSError):
                    pass
            self._old_handlers = {}
        if self.owned and self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1

    # --- reading ----------------------------------------------------------------------------
    def _pump(self, timeout: float | None) -> None:
        """Read what has arrived, waiting up to `timeout` (0: not at all) for it."""
        if self.eof:
            return
        try:
            ready, _, _ = select.select([self.fd], [], [], timeout)
        except InterruptedError:
            return
        if not ready:
            return
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return
        if not self.tty:
            self.queue.extend(data)
            return
        for b in data:
            if self._escape:
                self._escape = False
                if b == CTRL_A:
                    self.queue.append(CTRL_A)
                elif b in (ord("x"), ord("X")):
                    self.close()
                    raise Stop(Result("quit", 0, "terminated by Ctrl-A x"))
                elif b in (ord("h"), ord("H"), ord("?")):
                    self.err.write(HELP)
                    self.err.flush()
                elif b in (ord("b"), ord("B")):
                    self.queue.append(BREAK)
                # any other key after Ctrl-A is dropped, as QEMU's mux does
            elif b == CTRL_A:
                self._escape = True
            else:
                self.queue.append(b)

    def take(self, n: int) -> list[int]:
        if not self.queue:
            self._pump(0)
        out = []
        while self.queue and len(out) < n:
            out.append(self.queue.popleft())
        return out

    def wait(self, timeout: float | None) -> bool:
        if not self.queue:
            self._pump(timeout)
        return bool(self.queue)

    @property
    def exhausted(self) -> bool:
        return self.eof and not self.queue


def open_input(path: str) -> UartInput:
    """`--uart-input PATH`: a regular file is read whole (a reproducible script); a
    FIFO, a terminal or another character device is read as data arrives."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise BadInput(f"--uart-input {path}: {e.strerror}") from None
    if stat.S_ISREG(st.st_mode):
        return FileInput.from_path(path)
    if stat.S_ISDIR(st.st_mode):
        raise BadInput(f"--uart-input {path}: is a directory")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
    except OSError as e:
        raise BadInput(f"--uart-input {path}: {e.strerror}") from None
    return StreamInput(fd, tty=os.isatty(fd), owned=True)


def stdin_input() -> UartInput | None:
    """The host's stdin when it is a terminal, a pipe or a socket; None otherwise
    (closed, /dev/null, a regular file: use --uart-input FILE for a file)."""
    try:
        fd = sys.stdin.fileno()
        st = os.fstat(fd)
    except (OSError, ValueError, AttributeError):
        return None
    if os.isatty(fd):
        return StreamInput(fd, tty=True)
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        return StreamInput(fd)
    return None
