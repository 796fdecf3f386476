"""What a few slow or greedy clients may hold of the API: request bodies that must keep
arriving and stay under a size, a number of uploads at once, a number of event streams."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable

from starlette.requests import Request

from flowforge.errors import FlowForgeError
from orchestrator.api.errors import PayloadTooLarge, RequestTimeout


async def arriving(stream: AsyncIterator[bytes], seconds: float) -> AsyncIterator[bytes]:
    """The chunks of a request body, ending it with 408 when the next one takes longer than
    `seconds`: a client that stops sending would otherwise hold its request (and an upload's
    writer thread) for ever."""
    chunks = aiter(stream)
    while True:
        try:
            async with asyncio.timeout(seconds):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise RequestTimeout(
                f"the request body stopped arriving: nothing for {seconds:g} s "
                "(FLOWFORGE_API_BODY_TIMEOUT_SECONDS)"
            ) from None
        yield chunk


async def read_body(request: Request, limit: int, seconds: float, what: str) -> bytes:
    """The whole body, refused with 413 once it is over `limit` bytes: at once when its
    Content-Length says so (before a byte of it is read), else as soon as that many have
    arrived; never more than `limit` bytes are held."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(what, limit)
    body = bytearray()
    async for chunk in arriving(request.stream(), seconds):
        body += chunk
        if len(body) > limit:
            raise _too_large(what, limit)
    return bytes(body)


def _too_large(what: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{what} is larger than {limit} bytes ({limit / (1 << 20):g} MB)")


class Slot:
    """One place taken in a Slots; release() gives it back (once, however often called)."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class Slots:
    """At most `capacity` places held per key (one key when none is given). Only the event
    loop's thread takes and releases places, so a plain counter is enough."""

    def __init__(self, capacity: int, refusal: Callable[[int], FlowForgeError]) -> None:
        self.capacity = capacity
        self._refusal = refusal
        self._held: Counter[str] = Counter()

    def take(self, key: str = "") -> Slot:
        """A place for `key`, or the refusal (429/503 with Retry-After) when all are held."""
        if self._held[key] >= self.capacity:
            raise self._refusal(self.capacity)
        self._held[key] += 1
        return Slot(lambda: self._give_back(key))

    def held(self, key: str = "") -> int:
        return self._held[key]

    def _give_back(self, key: str) -> None:
        self._held[key] -= 1
        if not self._held[key]:
            del self._held[key]
