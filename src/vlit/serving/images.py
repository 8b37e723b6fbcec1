"""Images of a chat request: base64 data URIs, or http(s) URLs from hosts the server admin allowed.

Every limit is checked before the work it guards: the encoded length before base64 decoding, the declared and
the received size while fetching, the header's pixel count before decoding pixels (`vlit.data.reading.images`).
Remote URLs are refused by default: fetching whatever a client names would let it make the server probe
its own network. Redirects are not followed, since they could lead to a host nobody allowed.

Remote images are fetched on the event loop (`fetch_images`, awaited before the request's blocking work) under
one deadline for the whole fetch: httpx's timeouts are per read, which a host sending a byte now and then
never trips. Decoding happens later, on a request thread, from the fetched bytes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import httpx
from PIL import Image

from vlit.data.reading.images import ImageError, ImageTooLarge, decode_image
from vlit.serving.errors import APIError
from vlit.serving.settings import ServerSettings


def load_image_url(url: str, settings: ServerSettings, param: str, fetched: Mapping[str, bytes]) -> Image.Image:
    """The RGB image a request's `image_url.url` names; APIError 400/413 naming `param` otherwise. A remote
    URL's bytes come from `fetched` (`fetch_images`), so this blocks on decoding only, never on a network."""
    if url.startswith("data:"):
        data = decode_data_uri(url, settings, param)
    else:
        check_remote(url, settings, param)
        data = fetched[url]
    try:
        return decode_image(data, param, settings.max_image_pixels)
    except ImageTooLarge as e:
        raise APIError(413, str(e), param, "image_too_large") from None
    except ImageError as e:
        raise APIError(400, str(e), param, "invalid_image") from None


def _too_large(param: str, limit: int) -> APIError:
    return APIError(413, f"{param}: image is over the limit of {limit} bytes", param, "image_too_large")


def decode_data_uri(url: str, settings: ServerSettings, param: str) -> bytes:
    """The bytes of `data:image/...;base64,...`."""
    header, comma, payload = url.partition(",")
    media = header.removeprefix("data:")
    if not comma or not media.endswith(";base64"):
        raise APIError(400, f"{param}: a data URI must be base64 encoded: data:image/png;base64,...", param,
                       "invalid_image_url")
    if media != ";base64" and not media.startswith("image/"):
        raise APIError(400, f"{param}: {media.removesuffix(';base64')!r} is not an image media type", param,
                       "invalid_image_url")
    payload = "".join(payload.split())  # MIME base64 wraps lines; the line breaks are not data
    if len(payload) // 4 * 3 > settings.max_image_bytes:
        raise _too_large(param, settings.max_image_bytes)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, f"{param}: the data URI is not valid base64", param, "invalid_image_url") from None


def check_remote(url: str, settings: ServerSettings, param: str) -> None:
    """An http(s) URL on an allowed host, or APIError 400 naming `param`."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts, host = None, ""
    if parts is None or parts.scheme not in ("http", "https"):
        raise APIError(400, f"{param}: expected a data URI (data:image/png;base64,...) or an http(s) URL",
                       param, "invalid_image_url")
    if host not in settings.allowed_image_hosts:
        raise APIError(400, f"{param}: remote image URLs are refused (host {host!r} is not allowed; the server "
                            "can allow hosts with --allow-image-host); send the image as a base64 data URI",
                       param, "image_url_refused")


async def fetch_images(urls: Sequence[tuple[str, str]], settings: ServerSettings) -> dict[str, bytes]:
    """The bodies of the remote image URLs among `(param, url)` pairs (data URIs are skipped), by URL, each
    fetched once; the first failure is an APIError naming its `param`."""
    fetched: dict[str, bytes] = {}
    for param, url in urls:
        if not url.startswith("data:") and url not in fetched:
            fetched[url] = await fetch(url, settings, param)
    return fetched


async def fetch(url: str, settings: ServerSettings, param: str) -> bytes:
    """The body of an http(s) URL on an allowed host, read up to `max_image_bytes` within
    `image_fetch_timeout_s` in all."""
    check_remote(url, settings, param)
    limit, timeout = settings.max_image_bytes, settings.image_fetch_timeout_s
    try:
        async with asyncio.timeout(timeout), httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client, \
                client.stream("GET", url) as response:
            if response.status_code != 200:
                moved = " (redirects are not followed)" if response.is_redirect else ""
                raise APIError(400, f"{param}: fetching the image gave HTTP {response.status_code}{moved}",
                               param, "image_fetch_failed")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_large(param, limit)
            data = bytearray()
            async for piece in response.aiter_bytes():
                data += piece
                if len(data) > limit:
                    raise _too_large(param, limit)
            return bytes(data)
    except (TimeoutError, httpx.TimeoutException):
        raise APIError(400, f"{param}: fetching the image took longer than {timeout} s", param,
                       "image_fetch_failed") from None
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        raise APIError(400, f"{param}: fetching the image failed ({type(e).__name__})", param,
                       "image_fetch_failed") from None
