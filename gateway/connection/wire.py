"""WebSocket framing for the direct write path (RFC 6455 §5.2, server side).

A server frame is unmasked: the first byte (FIN + opcode), the payload length
in 7, 7+16 or 7+64 bits, then the payload. ``websockets`` builds the same
bytes through a ``Frame`` object, a ``BytesIO`` and a list of pending writes;
framing here skips that per recipient. Only for connections without
extensions (no permessage-deflate): those frames are exactly header + payload.
"""

from __future__ import annotations

from struct import Struct
from typing import Final

_FIN_TEXT: Final = 0x81
# The headers of every payload shorter than 126 bytes, built once.
_SHORT: Final = tuple(bytes((_FIN_TEXT, n)) for n in range(126))
_HEADER_16: Final = Struct("!BBH").pack  # 126 and a 16-bit length
_HEADER_64: Final = Struct("!BBQ").pack  # 127 and a 64-bit length


def text_header(length: int) -> bytes:
    """The header of a final, unmasked text frame carrying ``length`` bytes."""
    if length < 126:
        return _SHORT[length]
    if length < 1 << 16:
        return _HEADER_16(_FIN_TEXT, 126, length)
    return _HEADER_64(_FIN_TEXT, 127, length)


def text_frame(payload: bytes) -> bytes:
    """``payload`` (UTF-8 JSON) as one final, unmasked text frame.

    Once per recipient: the usual room push (126 bytes to 64 KiB) is framed
    without a call to ``text_header``.
    """
    length = len(payload)
    if 126 <= length < 1 << 16:
        return _HEADER_16(_FIN_TEXT, 126, length) + payload
    return text_header(length) + payload
