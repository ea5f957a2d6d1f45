"""HTTP plumbing: a threaded HTTP/1.1 keep-alive server on 127.0.0.1 in a background thread."""

from __future__ import annotations

import socket
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from prist_builder.testing.fake_openai.batches import FakeBatchLimits
from prist_builder.testing.fake_openai.chat import Responder
from prist_builder.testing.fake_openai.faults import BatchFaultRule, FaultRule
from prist_builder.testing.fake_openai.limits import EnforcedLimit
from prist_builder.testing.fake_openai.reply import Reply, error_reply, new_id
from prist_builder.testing.fake_openai.routes import FakeOpenAIApp, LogEntry

MAX_BODY_BYTES = 256 * 1024 * 1024


class FakeOpenAIServer:
    """A local fake of the OpenAI API for the real `openai` client.

    Serves `POST /v1/chat/completions`, `/v1/files` (upload, list, get, content,
    delete) and `/v1/batches` (create, list, get, cancel) on 127.0.0.1 at a free port.

    Args:
        responder: called with each chat request body (a dict); returns the assistant
            content as a str, or a dict/list sent as JSON. Defaults to
            `default_responder` (a minimal instance of a `json_schema` response format,
            else an echo). If it raises, the request gets a 500 `server_error`.
        latency_s: seconds every chat completion waits before answering (not batch lines,
            not error faults).
        batch_polls_until_done: `batches.retrieve` calls after which a batch finishes
            (0: it finishes when created).
        rate_limit: an enforced limit (`EnforcedLimit`: tokens and requests per sliding
            window, counted billed or at admission) answering 429 past the budget, with
            `x-ratelimit-*` headers from its counters; None (default) enforces nothing.
        batch_limits: the Batch API's limits (`FakeBatchLimits`: bytes and requests of a
            batch, enqueued tokens); a batch over one fails as the real API's does.
        keep_bodies: keep every chat request's parsed body in `log` (tests that inspect what
            was sent); by default the log holds counts, sizes and SHA-256 digests only, so a
            PRIST-sized build (images inline) can run through the server.

    Use `with FakeOpenAIServer() as server:` or `start()`/`stop()`. Raises
    RuntimeError when started twice or when `base_url` is read before `start()`.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        latency_s: float = 0.0,
        batch_polls_until_done: int = 1,
        rate_limit: EnforcedLimit | None = None,
        batch_limits: FakeBatchLimits | None = None,
        keep_bodies: bool = False,
    ) -> None:
        if latency_s < 0:
            raise ValueError("latency_s must be >= 0")
        self._stop_event = threading.Event()
        self._app = FakeOpenAIApp(
            responder, latency_s, batch_polls_until_done, self._stop_event, rate_limit, batch_limits, keep_bodies
        )
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        """Bind 127.0.0.1:0 and serve from a daemon thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("FakeOpenAIServer was already started")
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler, self._app)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake any scripted waits and close open client connections."""
        if self._httpd is None:
            return
        self._stop_event.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port. Raises RuntimeError before `start()`."""
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/v1`, ready for `openai.OpenAI(base_url=...)`."""
        return f"http://127.0.0.1:{self.port}/v1"

    # ---- scripting and inspection ----------------------------------------------------

    def add_fault(self, rule: FaultRule | BatchFaultRule) -> None:
        """Queue a chat `FaultRule` or a `BatchFaultRule`; rules apply in the order added."""
        if not isinstance(rule, (FaultRule, BatchFaultRule)):
            raise TypeError(f"expected FaultRule or BatchFaultRule, got {type(rule).__name__}")
        self._app.faults.add(rule)

    def clear_faults(self) -> None:
        """Drop every pending fault rule."""
        self._app.faults.clear()

    def pending_faults(self) -> int:
        """Uses left over all queued rules (0 once every scripted fault has fired)."""
        return self._app.faults.pending()

    def request_count(self, route: str | None = None) -> int:
        """Requests received per route: "chat", "files", "batches", "other"; None for all.

        `"batch_lines"` counts batch input lines that were run; those are not HTTP
        requests, so they are neither in "chat" nor in the total.
        """
        return self._app.request_count(route)

    def stored_files(self) -> list[dict]:
        """The file objects the Files API holds now (uploads and batch outputs not yet deleted)."""
        return self._app.files.all()

    def batch_custom_ids(self) -> Counter[str]:
        """How many times each batch input line (by ``custom_id``) was run."""
        return self._app.batch_custom_ids()

    def connections_accepted(self) -> int:
        """TCP connections accepted so far (shows whether clients reuse keep-alive sockets)."""
        return self._httpd.accepted if self._httpd is not None else 0

    @property
    def log(self) -> list[LogEntry]:
        """`(route, summary)` per request, in arrival order.

        Every summary has `method` and `path`; chat adds `bytes`, `sha256` (of the raw
        body), `headers`, `fault` (the fault kind applied, or None) and, with
        `keep_bodies=True`, `body` (parsed JSON); file uploads add `filename`,
        `purpose` and `bytes`; batch creation adds `body`.
        """
        return self._app.log

    def batches(self) -> list[dict[str, Any]]:
        """Every batch object, newest first (does not count as a poll)."""
        return self._app.batches.all()

    def limit_stats(self) -> dict[str, Any] | None:
        """The enforced limit's counters (see `SlidingWindow.stats`), or None without one."""
        return self._app.window.stats() if self._app.window is not None else None

    @property
    def latency_s(self) -> float:
        """Seconds each chat completion waits; may be changed while running."""
        return self._app.latency_s

    @latency_s.setter
    def latency_s(self, value: float) -> None:
        self._app.latency_s = value


class _HTTPServer(ThreadingHTTPServer):
    """Thread-per-connection server that remembers open sockets so `stop` can close them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # 64+ clients connect at once; the default backlog of 5 drops SYNs

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: FakeOpenAIApp) -> None:
        self.app = app
        self.accepted = 0
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that vanish; report anything else as usual."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def track(self, conn: socket.socket, opened: bool) -> None:
        with self._open_lock:
            if opened:
                self.accepted += 1
                self._open.add(conn)
            else:
                self._open.discard(conn)

    def close_connections(self) -> None:
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    """Reads each request fully, asks the app for a `Reply`, writes it with an exact Content-Length."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, opened=False)

    def log_message(self, format: str, *args: Any) -> None:  # quiet by design
        return

    def do_GET(self) -> None:  # http.server naming
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        try:
            body = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self._send(error_reply(400, str(exc)))
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.app.handle(method, self.path, headers, body)
        if reply.drop:
            self.close_connection = True
            return
        self._send(reply)

    def _read_body(self) -> bytes:
        """Read the whole request body (Content-Length or chunked). Raises ValueError."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY_BYTES:
            raise ValueError(f"bad Content-Length {length}")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = self.rfile.readline(1024)
            if not size_line:
                raise ValueError("connection closed inside a chunked body")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # skip trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(self, reply: Reply) -> None:
        """Write status line, headers and body in one write (keep-alive friendly)."""
        headers = {
            "Content-Type": reply.content_type,
            "Content-Length": str(len(reply.body)),
            "Date": self.date_time_string(),
            "x-request-id": new_id("req_", 32),
            "openai-processing-ms": "1",
            **reply.headers,
        }
        if self.close_connection:
            headers["Connection"] = "close"
        reason = self.responses.get(reply.status, ("",))[0]
        head = f"{self.protocol_version} {reply.status} {reason}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        try:
            if reply.trickle_s > 0:
                self.wfile.write(head.encode("latin-1") + b"\r\n")
                self.wfile.flush()
                for index in range(len(reply.body)):
                    if self.server.app.stopping(reply.trickle_s):
                        break
                    self.wfile.write(reply.body[index : index + 1])
                    self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(head.encode("latin-1") + b"\r\n" + reply.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client gave up (e.g. its timeout fired)
