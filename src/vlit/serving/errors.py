"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with an HTTP status.

Every failure a client can cause is an `APIError` raised where it is found (image decoding, the queue, the
worker); the app's exception handlers turn it, FastAPI's own errors and anything unexpected into this one
JSON shape, so OpenAI's clients raise their usual exception classes with a readable message.
"""

from __future__ import annotations

from vlit.errors import VlitError


class APIError(VlitError):
    """A request the server answers with `status` and an OpenAI error body; `param` names the field."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict:
        return error_body(self.status, self.message, self.param, self.code)


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    # OpenAI's two types: the client's fault (4xx, authentication included) or the server's (5xx).
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def overloaded(waiting: int) -> APIError:
    return APIError(503, f"The server is overloaded: {waiting} requests are already waiting (--max-queue). "
                         "Retry later.", code="overloaded")


def not_ready(why: str) -> APIError:
    return APIError(503, f"The model is not ready: {why}.", code="not_ready")
