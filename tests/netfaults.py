"""Network faults in this process, for tests: a TCP proxy in front of a real server
(PostgreSQL, a private redis-server) that can be cut, hung or made to drop a connection
the moment a given statement goes through it, and a listener that accepts and never
answers (a hung server). Free ports only; everything stops in `close()`."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading


class HungListener:
    """Accepts connections and never answers: a server that hangs (Redis stuck on a slow
    command, a half-dead host behind a load balancer)."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="hung-listener")
        self._thread.start()

    def _run(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._accepted.append(conn)  # read nothing, answer nothing

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()
        for conn in self._accepted:
            conn.close()


class TcpProxy:
    """127.0.0.1:<port> forwarded to `upstream`. Modes:

    - `up`: forwards both ways.
    - `down`: every connection is cut and new ones are refused (the listener is closed):
      what a stopped server looks like.
    - `hung`: connections (open and new) stay open, nothing goes either way.
    - `cut_on(marker)`: forwards, until a client sends bytes holding `marker` (a statement
      in PostgreSQL's protocol): then, before those bytes reach the server, every
      connection is cut and the proxy is `down`.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "up"
        self.marker: bytes | None = None
        self.cuts = 0
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._server: socket.socket | None = None
        self.port = 0
        self._stop = threading.Event()
        self._listen()
        self._pump = threading.Thread(target=self._run, daemon=True, name="tcp-proxy")
        self._pump.start()

    # --- control -------------------------------------------------------------------------

    def up(self) -> None:
        with self._lock:
            if self.mode == "hung":
                self._go_down()  # what hung is cut: its clients gave up on it long ago
            self.mode, self.marker = "up", None
            if self._server is None:
                self._listen()

    def down(self) -> None:
        with self._lock:
            self._go_down()

    def hang(self) -> None:
        with self._lock:
            self.mode = "hung"
            if self._server is None:
                self._listen()

    def cut_on(self, marker: bytes) -> None:
        with self._lock:
            self.marker = marker

    def close(self) -> None:
        self._stop.set()
        self._pump.join(timeout=5)
        with self._lock:
            self._go_down()

    # --- inside --------------------------------------------------------------------------

    def _listen(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        server.setblocking(False)
        self.port = server.getsockname()[1]
        self._server = server

    def _go_down(self) -> None:
        self.mode = "down"
        if self._server is not None:
            self._server.close()
            self._server = None
        for client, upstream in self._pairs:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._pairs.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                server = self._server
                pairs = list(self._pairs)
                hung = self.mode == "hung"
            selector = selectors.DefaultSelector()
            if server is not None:
                selector.register(server, selectors.EVENT_READ, ("accept", None))
            if not hung:
                for client, upstream in pairs:
                    selector.register(client, selectors.EVENT_READ, ("up", (client, upstream)))
                    selector.register(upstream, selectors.EVENT_READ, ("back", (client, upstream)))
            if not selector.get_map():
                selector.close()
                self._stop.wait(0.05)
                continue
            try:
                events = selector.select(timeout=0.05)
            except (OSError, ValueError):
                events = []
            for key, _ in events:
                kind, pair = key.data
                with self._lock:
                    if kind == "accept":
                        self._accept()
                    elif self.mode == "up" and pair in self._pairs:
                        self._forward(kind, pair)
            selector.close()

    def _accept(self) -> None:
        if self._server is None:
            return
        try:
            client, _ = self._server.accept()
        except (BlockingIOError, OSError):
            return
        if self.mode == "hung":
            # Accepted, never connected upstream, never answered.
            self._pairs.append((client, socket.socket()))
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        # Read only when select() says readable; a send may wait a little.
        client.settimeout(5)
        upstream.settimeout(5)
        self._pairs.append((client, upstream))

    def _forward(self, kind: str, pair: tuple[socket.socket, socket.socket]) -> None:
        client, upstream = pair
        source, target = (client, upstream) if kind == "up" else (upstream, client)
        try:
            data = source.recv(65536)
        except OSError:
            data = b""
        if kind == "up" and data and self.marker is not None and self.marker in data:
            self.cuts += 1
            self._go_down()
            return
        if not data:
            self._drop(pair)
            return
        try:
            target.sendall(data)
        except OSError:
            self._drop(pair)

    def _drop(self, pair: tuple[socket.socket, socket.socket]) -> None:
        for sock in pair:
            sock.close()
        self._pairs.remove(pair)
