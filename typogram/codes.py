"""Error codes (REST and WebSocket) and WebSocket close codes, in one place."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNPROCESSABLE = "unprocessable"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"
    # Courses (typogram.courses): premium content without a running subscription,
    # a lesson whose earlier lessons are not completed, a lesson before enrolling.
    SUBSCRIPTION_REQUIRED = "subscription_required"
    LESSON_LOCKED = "lesson_locked"
    NOT_ENROLLED = "not_enrolled"
    # Payments (typogram.payments): a webhook whose signature or timestamp fails,
    # a coupon refused at checkout (the reason is in ``fields.coupon``), the
    # payment provider not answering.
    BAD_SIGNATURE = "bad_signature"
    COUPON_REFUSED = "coupon_refused"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    # Staff tools (typogram.staff): logging in or refreshing while a ban is in force.
    BANNED = "banned"
    # Connection caps (gateway.connection.admission): a user's sockets after hello (close 4029).
    TOO_MANY_CONNECTIONS = "too_many_connections"
    # E-mail (typogram.mail): a verification or reset link that is malformed, unknown,
    # of the other kind, expired or used (which, in ``fields.token``).
    INVALID_TOKEN = "invalid_token"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.BAD_SIGNATURE: 400,
    ErrorCode.INVALID_TOKEN: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.SUBSCRIPTION_REQUIRED: 402,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.LESSON_LOCKED: 403,
    ErrorCode.NOT_ENROLLED: 403,
    ErrorCode.BANNED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNPROCESSABLE: 422,
    ErrorCode.COUPON_REFUSED: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.TOO_MANY_CONNECTIONS: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.PROVIDER_UNAVAILABLE: 503,
}


class CloseCode(IntEnum):
    GOING_AWAY = 1012  # server restarting or draining: reconnect elsewhere
    TRY_AGAIN_LATER = 1013  # node full
    MESSAGE_TOO_BIG = 1009
    KEEPALIVE_TIMEOUT = 1011  # no pong within ws_ping_timeout_s: resumable
    UNAUTHORIZED = 4001
    REPLACED = 4002
    PROTOCOL_ABUSE = 4003  # keeps sending malformed frames
    TOO_SLOW = 4008
    RATE_LIMITED = 4029  # over the message rate, or over ws_max_connections_per_user
