"""Error responses in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

from starlette.responses import JSONResponse

INVALID_REQUEST = "invalid_request_error"


def error_body(
    message: str, kind: str = INVALID_REQUEST, param: str | None = None, code: str | None = None
) -> dict[str, dict[str, str | None]]:
    """The JSON body of an error."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    kind: str = INVALID_REQUEST,
    param: str | None = None,
    code: str | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error with its HTTP status (and any extra headers, such as `Retry-After`)."""
    return JSONResponse(error_body(message, kind, param, code), status_code=status, headers=headers)
