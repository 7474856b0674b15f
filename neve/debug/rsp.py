"""GDB remote serial protocol framing, bytes in and bytes out (no socket here; the
transport is neve/debug/gdb.py's `Link`).

`$payload#cs` packets with a two-digit hex checksum, `}` escapes, run-length decoding
of received packets, `+`/`-` acknowledgements (until no-ack mode), and the 0x03
interrupt byte gdb sends for Ctrl-C.
"""
from __future__ import annotations

INTERRUPT = b"\x03"


class Framer:
    """The received bytes of one connection and what they hold.

    `feed` adds received bytes; `next_packet`, `take_ack` and `take_interrupt` consume
    them and return None when they need more.  Acknowledgements to send back collect
    in `out`, in order; the transport sends them and empties it."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.out = bytearray()   # acks for received packets, not yet sent
        self.ack = True
        self.interrupts = 0      # 0x03 bytes seen while looking for something else

    # --- pure encoding ---------------------------------------------------------------
    @staticmethod
    def checksum(data: bytes) -> int:
        return sum(data) & 0xFF

    @staticmethod
    def escape(data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            if b in b"$#}*":
                out += bytes((0x7D, b ^ 0x20))
            else:
                out.append(b)
        return bytes(out)

    @staticmethod
    def decode(data: bytes) -> bytes:
        """Expand run-length encoding (`X*n`: X repeated n-29 more times), then
        remove `}` escapes."""
        rl = bytearray()
        i = 0
        while i < len(data):
            b = data[i]
            if b == 0x2A and rl and i + 1 < len(data):      # '*'
                rl += rl[-1:] * (data[i + 1] - 29)
                i += 2
                continue
            rl.append(b)
            i += 1
        out = bytearray()
        i = 0
        while i < len(rl):
            if rl[i] == 0x7D and i + 1 < len(rl):
                out.append(rl[i + 1] ^ 0x20)
                i += 2
            else:
                out.append(rl[i])
                i += 1
        return bytes(out)

    @classmethod
    def frame(cls, payload: bytes) -> bytes:
        body = cls.escape(payload)
        return b"$" + body + b"#" + b"%02x" % cls.checksum(body)

    # --- received bytes ----------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.buf += data

    def take_ack(self) -> bool | None:
        """After sending a packet in ack mode: True when gdb acknowledged it (`+`, or
        `$`, gdb's next packet, an implied ack, left in place), False when gdb asks
        for it again (`-`), None when more bytes are needed.  0x03 bytes before the
        ack are remembered as interrupts; anything else is noise."""
        while self.buf:
            c = self.buf[0]
            if c == 0x24:          # '$': gdb moved on to its next packet (an implied ack)
                return True
            del self.buf[0]
            if c == 0x2B:          # '+'
                return True
            if c == 0x2D:          # '-': resend
                return False
            if c == 0x03:
                self.interrupts += 1
            # anything else before the ack is noise
        return None

    def next_packet(self) -> bytes | None:
        """The next packet's payload, INTERRUPT for a 0x03 byte, or None when more
        bytes are needed.  In ack mode a packet with a bad checksum is answered with
        `-` (in `out`) and skipped; a good one with `+`."""
        if self.interrupts:
            self.interrupts -= 1
            return INTERRUPT
        while self.buf:
            c = self.buf[0]
            if c == 0x03:
                del self.buf[0]
                return INTERRUPT
            if c != 0x24:              # '$'; skip acks and noise
                del self.buf[0]
                continue
            end = self.buf.find(b"#")
            if end < 0 or len(self.buf) < end + 3:
                return None
            body = bytes(self.buf[1:end])
            cs = bytes(self.buf[end + 1:end + 3])
            del self.buf[:end + 3]
            try:
                ok = int(cs, 16) == self.checksum(body)
            except ValueError:
                ok = False
            if self.ack:
                self.out += b"+" if ok else b"-"
            if ok or not self.ack:
                return self.decode(body)
        return None

    def take_interrupt(self) -> bool:
        """Has gdb sent a 0x03 (Ctrl-C) outside a packet?  Consumes it."""
        if self.interrupts:
            self.interrupts -= 1
            return True
        i = self.buf.find(INTERRUPT)
        if i < 0:
            return False
        j = self.buf.find(b"$")
        if 0 <= j < i:
            return False          # inside or after a packet: next_packet() sees it in order
        del self.buf[i]
        return True
