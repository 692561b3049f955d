"""Webhook receivers on 127.0.0.1 for the tests: real HTTP servers in a thread.

A receiver verifies the signature with :func:`modelpilot.integrations.webhooks.verify_signature`
(401 when it does not hold), then answers with the next status of its ``script`` (200 once
the script is spent) or hangs for ``hang`` seconds first.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from modelpilot.integrations.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)


@dataclass
class Receiver:
    secret: bytes | None
    script: list[int] = field(default_factory=list)
    hang: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)  # the accepted bodies
    calls: list[dict[str, Any]] = field(default_factory=list)  # every request, accepted or not
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k: self.headers.get(k) for k in (EVENT_HEADER, DELIVERY_HEADER, TIMESTAMP_HEADER,
                                                             SIGNATURE_HEADER)}
                receiver.calls.append(headers)
                if receiver.hang:
                    threading.Event().wait(receiver.hang)
                ok = receiver.secret is None or verify_signature(
                    receiver.secret, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
                status = (receiver.script.pop(0) if receiver.script else 200) if ok else 401
                if ok and 200 <= status < 300:
                    receiver.received.append({"body": json.loads(body), "headers": headers})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
