"""A local HTTP file server for download tests: serves bytes, honours Range, can break a transfer off or fail."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FileServer:
    """What the server holds and what it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    #: Per path: stop after sending this many bytes, once (simulates a dropped connection).
    cut_after: dict[str, int] = field(default_factory=dict)
    #: Per path: HTTP statuses to answer, one per request and in order, before the file is served.
    fail: dict[str, list[int]] = field(default_factory=dict)
    #: Seconds each answer with a body waits before sending it, so that transfers overlap in time.
    delay_s: float = 0.0
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    #: The most requests that were being answered at the same moment.
    most_at_once: int = 0
    url: str = ""
    _at_once: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url_for(self, path: str) -> str:
        return f"{self.url}/{path}"


def _handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            with state._lock:
                state._at_once += 1
                state.most_at_once = max(state.most_at_once, state._at_once)
            try:
                self.answer()
            finally:
                with state._lock:
                    state._at_once -= 1

        def answer(self) -> None:
            path = self.path.lstrip("/")
            range_header = self.headers.get("Range")
            state.requests.append((path, range_header))
            if state.fail.get(path):
                self.send_error(state.fail[path].pop(0))
                return
            if path not in state.files:
                self.send_error(404)
                return
            data = state.files[path]
            start = int(range_header.removeprefix("bytes=").split("-")[0]) if range_header else 0
            if start >= len(data) and range_header:
                self.send_error(416)
                return
            body = data[start:]
            time.sleep(state.delay_s)
            self.send_response(206 if range_header else 200)
            if range_header:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if (limit := state.cut_after.pop(path, None)) is not None:
                self.wfile.write(body[:limit])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def serve(state: FileServer) -> Iterator[FileServer]:
    """Run the server on a free localhost port for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
