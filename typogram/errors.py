"""The one domain error that REST and the gateway turn into error replies."""

from __future__ import annotations

from collections.abc import Mapping

from typogram.codes import HTTP_STATUS, ErrorCode


class AppError(Exception):
    """A failure the client caused or must hear about, with a code and a message.

    ``fields`` names the request fields at fault, for form-style clients;
    ``details`` is what the client needs to act on the error (a gateway error frame
    and a REST error body carry it as ``details``, e.g. the race a matched ticket
    went to).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        fields: Mapping[str, str] | None = None,
        retry_after: int | None = None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = dict(fields) if fields else None
        self.retry_after = retry_after
        self.details = dict(details) if details else None

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code.value, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        if self.details:
            error["details"] = self.details
        return {"error": error}


class BackendUnavailable(RuntimeError):
    """A backend (database, Redis, Kafka) cannot be reached; names it in one line."""

    def __init__(self, backend: str, target: str, reason: str) -> None:
        super().__init__(f"cannot reach {backend} at {target}: {reason}")
        self.backend = backend
        self.target = target
