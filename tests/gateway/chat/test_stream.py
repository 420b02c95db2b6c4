"""The stream relay's own guarantees, without HTTP: `finish` runs exactly once however a stream
ends, including a stream the client never started reading."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gateway.chat.stream import StreamRelay


class Upstream:
    def __init__(self) -> None:
        self.closed = False

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        try:
            for i in range(3):
                yield {"choices": [{"index": 0, "delta": {"content": f"w{i}"}}]}
        finally:
            self.closed = True


def relay(upstream: Upstream) -> StreamRelay:
    return StreamRelay(
        upstream.chunks(), target_name="small-a", client_wants_usage=False, prompt_chars=8
    )


async def test_a_stream_never_read_is_closed_and_reported_once() -> None:
    upstream = Upstream()
    r = relay(upstream)
    await r.open()
    finished: list[bool] = []
    events = r.events(lambda: finished.append(True))
    await r.abandon(lambda: finished.append(True))
    await r.abandon(lambda: finished.append(True))
    assert finished == [True] and upstream.closed
    assert r.client_aborted and r.partial
    await events.aclose()  # a never-started generator: its finally does not run
    assert finished == [True]


async def test_abandon_after_a_whole_stream_does_nothing() -> None:
    upstream = Upstream()
    r = relay(upstream)
    await r.open()
    finished: list[bool] = []
    out = [e async for e in r.events(lambda: finished.append(True))]
    assert out[-1] == b"data: [DONE]\n\n" and len(out) == 4
    await r.abandon(lambda: finished.append(True))
    assert finished == [True] and not r.client_aborted
