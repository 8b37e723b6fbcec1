"""The HTTP edge of the API: an `x-request-id` on every response and refusals before the body is read (`Guard`),
and exception handlers that answer every error in OpenAI's shape (`{"error": {"message", "type", "param",
"code"}}`), never with a traceback. A body that does not match the schema gets 400, as OpenAI and vLLM answer
it (FastAPI's own is 422), with one line naming the field."""

from __future__ import annotations

import hmac
import re
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vlit.errors import VlitError
from vlit.serving.errors import APIError, error_body
from vlit.serving.settings import ServerSettings

# A client's own request id is echoed when it is a plain token (it ends up in log lines and headers).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def request_id(given: str | None) -> str:
    """The client's `x-request-id` when it is a plain token, else a new one."""
    return given if given is not None and _REQUEST_ID.fullmatch(given) else f"req_{uuid.uuid4().hex}"


class Guard:
    """Pure ASGI middleware: every response carries `x-request-id` (the client's, or a new one); a missing or
    wrong API key (401) and a declared body size over the limit (413) are refused before any of the body is
    read; a body that grows past the limit while read gets 413 too."""

    def __init__(self, app: ASGIApp, settings: ServerSettings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        rid = request_id(headers.get("x-request-id")).encode()

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid)]}
            await send(message)

        limit = self.settings.max_body_bytes
        error = self._key_error(scope["path"], headers.get("authorization"))
        declared = headers.get("content-length", "")
        if error is None and declared.isdigit() and int(declared) > limit:
            error = _body_too_large(limit)
        if error is not None:
            await JSONResponse(error.body(), status_code=error.status)(scope, receive, tagged)
            return
        received = 0

        async def limited() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                # An HTTPException passes through FastAPI's body parsing to the exception handlers.
                raise HTTPException(413, _body_too_large(limit).message)
            return message

        await self.app(scope, limited, tagged)

    def _key_error(self, path: str, authorization: str | None) -> APIError | None:
        key = self.settings.api_key
        if key is None or not path.startswith("/v1/"):
            return None
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return APIError(401, "You didn't provide an API key. Provide it in an Authorization header using "
                                 "Bearer auth (Authorization: Bearer YOUR_KEY).", code="invalid_api_key")
        # Constant time: a plain comparison would tell an attacker how many leading characters are right.
        if not hmac.compare_digest(given.strip().encode(), key.encode()):
            return APIError(401, "Incorrect API key provided.", code="invalid_api_key")
        return None


def _body_too_large(limit: int) -> APIError:
    return APIError(413, f"The request body is over this server's limit of {limit} bytes (--max-body-mb).",
                    code="request_too_large")


# pydantic names the branch of a union it tried in the error location (`str`, `list[...]`, `constrained-str`);
# a client wants the path of its own JSON.
_TYPE_LABELS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def _path(loc: tuple) -> list:
    parts: list = []
    for p in loc:
        if (p == "body" and not parts) or (isinstance(p, str) and (not p.isidentifier() or p in _TYPE_LABELS)):
            continue
        if parts and p == parts[-1]:  # a tagged union's tag (`text`) before the field of the same name
            continue
        parts.append(p)
    return parts


UNKNOWN_FIELD = "unknown field; this server does not honour it, so it refuses the request rather than ignore it"


def _message(error: dict) -> str:
    return UNKNOWN_FIELD if error.get("type") == "extra_forbidden" else error.get("msg", "invalid")


def validation_message(errors: list[dict]) -> tuple[str, str | None]:
    """One line for a client: the most specific error of the first bad field, and how many more fields."""
    found = [(_path(e.get("loc", ())), _message(e)) for e in errors]
    first_field = [(p, m) for p, m in found if p[:1] == found[0][0][:1]]
    deepest = max(len(p) for p, _ in first_field)
    path = next(p for p, _ in first_field if len(p) == deepest)
    messages = "; ".join(dict.fromkeys(m for p, m in first_field if p == path))
    param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or None
    others = len({tuple(p[:1]) for p, _ in found}) - 1
    more = f" (and errors in {others} more field{'s' if others > 1 else ''})" if others else ""
    return f"{param or 'body'}: {messages}{more}", param


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, e: APIError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(VlitError)
    async def vlit_error(request: Request, e: VlitError) -> JSONResponse:
        return JSONResponse(error_body(400, str(e)), status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = list(e.errors())
        if not errors:
            return JSONResponse(error_body(400, "invalid request", code="invalid_request"), status_code=400)
        if errors[0].get("type") == "json_invalid":
            detail = (errors[0].get("ctx") or {}).get("error", "JSON decode error")
            body = error_body(400, f"We could not parse the JSON body of your request ({detail}).",
                              code="invalid_json")
            return JSONResponse(body, status_code=400)
        message, param = validation_message(errors)
        # A path parameter of the wrong type is a 422 of the URL, not of a body.
        status = 400 if any(err.get("loc", ("body",))[0] == "body" for err in errors) else 422
        code = "unknown_field" if errors[0].get("type") == "extra_forbidden" else "invalid_request"
        return JSONResponse(error_body(status, message, param, code), status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(e.status_code, str(e.detail)), status_code=e.status_code,
                            headers=e.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, e: Exception) -> JSONResponse:
        # Starlette re-raises the exception after this response, so the server logs its traceback.
        return JSONResponse(error_body(500, "The server had an error while processing your request."),
                            status_code=500)
