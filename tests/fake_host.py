"""Test helpers: a model host on loopback that misbehaves on request, and private catalogs that point at it.

`FakeHost` serves files over HTTP with Range support, like a CDN. A test queues `Answer`s for a file to make the
next requests fail in one chosen way (a dropped connection, a 500, a 404, a slow answer, a web page, a Range
request ignored, other bytes than the file) and reads `requests` to see what the client asked for.
"""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from facegen import registry


@dataclass(frozen=True)
class Answer:
    """How the host answers one request for a file."""

    status: int = 200
    send_bytes: int | None = None  # close the connection after this many body bytes: a dropped download
    ignore_range: bool = False  # answer a Range request with 200 and the whole file
    delay_s: float = 0.0  # wait this long before answering: a slow host
    content_type: str = "application/octet-stream"
    body: bytes | None = None  # serve these bytes instead of the file
    declare_length: bool = True  # send Content-Length (else the body ends when the connection closes)


class FakeHost:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.plans: dict[str, deque[Answer]] = defaultdict(deque)
        self.requests: list[tuple[str, str | None]] = []  # (file name, Range header)
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def serve(self, name: str, data: bytes) -> None:
        self.files[name] = data

    def plan(self, name: str, *answers: Answer) -> None:
        """The next requests for `name` get these answers, in order; later ones are answered normally."""
        self.plans[name].extend(answers)

    def ranges_asked(self, name: str) -> list[str | None]:
        return [asked for requested, asked in self.requests if requested == name]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, request: http.server.BaseHTTPRequestHandler) -> None:
        name = request.path.lstrip("/")
        asked = request.headers.get("Range")
        self.requests.append((name, asked))
        answer = self.plans[name].popleft() if self.plans[name] else Answer()
        time.sleep(answer.delay_s)
        data = answer.body if answer.body is not None else self.files.get(name)
        if data is None or answer.status >= 400:
            request.send_response(404 if data is None else answer.status)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        start = int(re.fullmatch(r"bytes=(\d+)-", asked).group(1)) if asked and not answer.ignore_range else 0
        if start >= len(data) and start > 0:
            request.send_response(416)
            request.send_header("Content-Range", f"bytes */{len(data)}")
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        body = data[start:]
        request.send_response(206 if start else 200)
        request.send_header("Content-Type", answer.content_type)
        if start:
            request.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if answer.declare_length:
            request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body if answer.send_bytes is None else body[: answer.send_bytes])
        request.wfile.flush()
        request.close_connection = True


def use_catalog(tmp_path: Path, monkeypatch, models: dict[str, dict[str, Any]]) -> Path:
    """Point the registry at a catalog holding `models` (tables as in catalog.toml) and at a private cache."""
    defaults = {"family": "dcgan", "format": "torch-dcgan", "resolution": 32, "z_dim": 10, "license": "test only"}
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(tomli_w.dumps({"models": {model_id: defaults | table for model_id, table in models.items()}}))
    monkeypatch.setattr(registry, "CATALOG_PATH", catalog)
    monkeypatch.setenv("FACEGEN_CACHE", str(tmp_path / "cache"))
    return catalog
