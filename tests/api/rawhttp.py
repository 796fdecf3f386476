"""HTTP/1.1 over a plain socket, for clients no library would be: one that stops sending
half-way, one that announces a body it never sends, one that sends until it is told no."""

from __future__ import annotations

import http.client
import select
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def connect(
    url: str, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> socket.socket:
    """A socket that has sent the request line, `headers` and the first bytes of the body."""
    address = urlsplit(url)
    sock = socket.create_connection((address.hostname or "127.0.0.1", address.port or 80), 10)
    head = f"{method} {path} HTTP/1.1\r\nHost: {address.netloc}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    sock.sendall(head.encode() + b"\r\n" + body)
    return sock


def answer(sock: socket.socket, timeout: float = 30) -> Answer:
    """The response on `sock`, waiting at most `timeout` seconds for it to begin."""
    sock.settimeout(timeout)
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


def answered(sock: socket.socket) -> bool:
    """Whether the server has started to answer (or closed the connection)."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def send_until_answered(sock: socket.socket, chunk: bytes, most: int, timeout: float = 30) -> int:
    """Sends `chunk` (HTTP chunked encoding) until the server answers, `most` bytes have
    gone, or the server stops reading for `timeout` seconds; returns the bytes sent."""
    sent = 0
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while sent < most and not answered(sock) and time.monotonic() < deadline:
        try:
            sock.sendall(framed)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            break
        sent += len(chunk)
    return sent
