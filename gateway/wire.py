"""WebSocket framing for the direct write path (RFC 6455 §5.2, server side).

A server frame is unmasked: the first byte (FIN + opcode), the payload length
in 7, 7+16 or 7+64 bits, then the payload. ``websockets`` builds the same
bytes through a ``Frame`` object, a ``BytesIO`` and a list of pending writes;
framing here skips that per recipient. Only for connections without
extensions (no permessage-deflate): those frames are exactly header + payload.
"""

from __future__ import annotations

from typing import Final

_FIN_TEXT: Final = 0x81
# The headers of every payload shorter than 126 bytes, built once.
_SHORT: Final = tuple(bytes((_FIN_TEXT, n)) for n in range(126))


def text_header(length: int) -> bytes:
    """The header of a final, unmasked text frame carrying ``length`` bytes."""
    if length < 126:
        return _SHORT[length]
    if length < 1 << 16:
        return b"\x81\x7e" + length.to_bytes(2, "big")
    return b"\x81\x7f" + length.to_bytes(8, "big")


def text_frame(payload: bytes) -> bytes:
    """``payload`` (UTF-8 JSON) as one final, unmasked text frame."""
    return text_header(len(payload)) + payload
