"""Pure ASGI middleware: body size limit, security headers, access log and request metrics."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.cache import ByteLRU
from app.core.prometheus import Metrics

access_log = logging.getLogger("arena.access")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
]


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a body over `max_bytes`, whether or not it declares its length."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if b"transfer-encoding" not in headers and (
            declared is None or declared.isdigit() and int(declared) <= self.max_bytes
        ):
            # HTTP/1.1 framing: the server delivers at most the declared length (more would be the next request),
            # and no body at all without Content-Length or Transfer-Encoding: nothing to watch
            return await self.app(scope, receive, send)
        limit = f"request body is over the limit of {self.max_bytes} bytes"
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _reply(send, 413, f"{limit} (Content-Length {int(declared)})")
        seen, exceeded, replied = 0, False, False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                # Frameworks turn errors raised here into their own 400; end the body and answer 413 in send.
                exceeded = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replied
            if not exceeded:
                return await send(message)
            if not replied:
                replied = True
                await _reply(send, 413, limit)

        await self.app(scope, limited_receive, guarded_send)


class Observe:
    """Security headers on every response; one JSON access-log line and metrics per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics, known_models: set[str]):
        self.app, self.metrics, self.known = app, metrics, known_models

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = 500

        async def wrapped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                # CSP is for documents: a page that sets its own keeps it, and an image opened in a tab gets none
                # (Chrome's image viewer styles itself inline, which a CSP would report as an error).
                keep_csp = not any(k.lower() == b"content-security-policy" for k, _ in headers) and any(
                    k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers
                )
                message["headers"] = headers + [
                    (k, v) for k, v in SECURITY_HEADERS if keep_csp or k != b"content-security-policy"
                ]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, wrapped)
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, status, time.perf_counter() - t0)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        model = (scope.get("path_params") or {}).get("name") or _query_model(scope)
        model = model if model in self.known else "-"
        self.metrics.requests.labels(route, model, str(status)).inc()
        self.metrics.latency.labels(route, model).observe(seconds)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                json.dumps(
                    {
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "model": model,
                        "status": status,
                        "ms": round(seconds * 1000, 2),
                    }
                )
            )


def _query_model(scope: Scope) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("model")
    return values[0] if values else None


class ImmutableResponses:
    """Replays a repeated GET of an immutable image from memory, before routing and validation.

    A response marked `immutable` (a seed's grid within one model version) never changes for its exact URL, as
    its ETag promises, so a second request for that URL needs no framework: status, headers and body are sent
    again (Server-Timing says it was a cache hit) and a matching If-None-Match gets 304, as from the app. What a
    reverse proxy's cache would do, inside the process. The models change only on a restart, which empties it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.cache = app, ByteLRU(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        key = (scope["path"], scope["query_string"])
        hit = self.cache.get(key)
        if hit is not None:
            return await self._replay(hit, scope, send)
        start: dict = {}
        body: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        headers = dict(start.get("headers", []))
        if start.get("status") == 200 and b"immutable" in headers.get(b"cache-control", b""):
            kept = [(k, v) for k, v in start["headers"] if k != b"server-timing"] + [
                (b"server-timing", b'cache;desc="hit"')
            ]
            payload = b"".join(body)
            self.cache.put(key, (kept, payload, headers.get(b"etag", b""), scope.get("route")), len(payload) + 512)

    @staticmethod
    async def _replay(hit: tuple, scope: Scope, send: Send) -> None:
        headers, payload, etag, route = hit
        scope["route"] = route  # so the access log and metrics name the route as for any other request
        asked = dict(scope["headers"]).get(b"if-none-match", b"")
        if etag and etag in [t.strip() for t in asked.split(b",")]:
            kept = [(k, v) for k, v in headers if k not in (b"content-length", b"content-type", b"server-timing")]
            await send({"type": "http.response.start", "status": 304, "headers": kept})
            return await send({"type": "http.response.body", "body": b""})
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
