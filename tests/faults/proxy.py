"""A small TCP fault proxy for tests: pass, delay, drop, reset, refuse, cut after N bytes.

It sits between a client and a real server (SeaweedFS, a layer service). Faults are real
socket behaviour, not mocks: a refused connection is ECONNREFUSED, a reset is an RST.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass


@dataclass
class Fault:
    mode: str = "pass"  # pass | delay | drop | reset | refuse | cut
    delay_seconds: float = 0.0
    cut_after_bytes: int = 0  # cut: reset once this many client bytes went upstream
    times: int | None = None  # cut/reset/drop: how many connections to hurt, None = all


class FaultProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.fault = Fault()
        self.hurt = 0  # connections a fault was applied to
        self._generation = 0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.port = 0
        self._closed = threading.Event()
        self._connections: list[socket.socket] = []
        self._listen()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, mode: str = "pass", **params: float | int | None) -> None:
        with self._lock:
            self.fault = Fault(mode, **params)  # type: ignore[arg-type]
            self.hurt = 0
            self._generation += 1
        if mode == "refuse":
            # The store went away: new connections are refused and open ones reset, so
            # pooled keep-alive connections do not carry on as if nothing happened.
            self._stop_listening()
            for conn in list(self._connections):
                _reset(conn)
            self._connections.clear()
        elif self._listener is None:
            self._listen()

    def close(self) -> None:
        self._closed.set()
        self._stop_listening()
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.close()

    # -- listening -------------------------------------------------------------
    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(100):
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.05)
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    # -- one connection --------------------------------------------------------
    def _take_fault(self) -> Fault:
        with self._lock:
            fault = self.fault
            if fault.mode in ("pass", "delay", "cut"):
                return fault
            if fault.times is not None and self.hurt >= fault.times:
                return Fault()
            self.hurt += 1
            return fault

    def _serve(self, client: socket.socket) -> None:
        self._connections.append(client)
        fault = self._take_fault()
        if fault.mode == "reset":
            _reset(client)
            return
        if fault.mode == "drop":
            self._closed.wait(120)  # accept, then never answer
            client.close()
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            _reset(client)
            return
        self._connections.append(upstream)
        upstream.settimeout(None)
        threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
        self._pump(upstream, client, False)

    def _pump(self, src: socket.socket, dst: socket.socket, upstream_bound: bool) -> None:
        """Copies bytes one way, applying the proxy's current fault as it goes (so a fault
        set now also hits connections that were opened before and are kept alive)."""
        generation, sent = -1, 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                fault = self.fault
                if fault.delay_seconds:
                    time.sleep(fault.delay_seconds)
                if upstream_bound and fault.mode == "cut":
                    if generation != self._generation:
                        generation, sent = self._generation, 0
                    if sent + len(data) > fault.cut_after_bytes and self._take_cut():
                        dst.sendall(data[: max(fault.cut_after_bytes - sent, 0)])
                        _reset(src)
                        _reset(dst)
                        return
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def _take_cut(self) -> bool:
        with self._lock:
            if self.fault.times is not None and self.hurt >= self.fault.times:
                return False
            self.hurt += 1
            return True


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
