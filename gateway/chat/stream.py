"""A streamed answer: the relay of one upstream stream as Server-Sent Events, and its lease.

`StreamRelay.open()` pulls the first chunk before anything is sent, so a deployment that fails
before its first byte can still be replaced by the next one. After that the relay owns the stream:
it renames `model` to the deployment, hides the usage chunk the gateway asked for if the client did
not, counts tokens (the upstream's usage when it sends one, an estimate marked as such otherwise),
turns a mid-stream failure into an SSE error event and a clean end, ends the stream the same way
when the caller's key cannot pay for more (`gateway.access.allowance`), and, when the client goes
away, closes the upstream request and still reports what was generated.

What the client sees is framed by three methods (`_frame`, `_failure`, `_end`): chat completions
SSE chunks and `[DONE]` here; the Responses API's typed events in `gateway.chat.response_stream`,
whose relays replace them and keep everything else.

`StreamLease` owns everything a stream holds until it ends: the deployment's slot (and so its
in-flight count), the breaker that hears about a mid-stream failure, and the request's ledger. It is
made once the first chunk has arrived and released exactly once, however the stream ends: read to
its end, cut by the upstream, left by the client mid-stream, or never read at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from gateway.access.allowance import StreamAllowance
from gateway.chat.ledger import Ledger
from gateway.config import Price
from gateway.lifecycle import Drain
from gateway.protocol.errors import envelope
from gateway.protocol.openai import JSON, dumps
from gateway.reliability.breaker import Breaker
from gateway.reliability.concurrency import Slot
from gateway.telemetry.tokens import estimate, reported
from gateway.upstream.base import UpstreamError

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"


def sse(payload: Any) -> bytes:
    return b"data: " + dumps(payload) + b"\n\n"


class StreamRelay:
    def __init__(
        self,
        chunks: AsyncIterator[JSON],
        *,
        target_name: str,
        client_wants_usage: bool,
        prompt_chars: int,
        allowance: StreamAllowance | None = None,
        drain: Drain | None = None,
    ) -> None:
        """`allowance`: what the caller's key may still spend on this stream (None: no limit
        to watch); the stream is ended when it has nothing left. `drain`: the process's, which
        ends the stream cleanly if it still runs when the drain's grace is over."""
        self._chunks = chunks
        self._target = target_name
        self._wants_usage = client_wants_usage
        self._prompt_chars = prompt_chars
        self._first: JSON | None = None
        self._completion_chars = 0
        self._usage: JSON | None = None
        self._allowance = allowance
        self._drain = drain
        self._stopping = False
        self._waiting: asyncio.Timeout | None = None
        self.error: UpstreamError | None = None
        self.cut: str | None = None
        """Why the gateway ended the stream, if it did: `insufficient_quota` or
        `rate_limit_exceeded` (the key could pay for no more), `shutting_down` (the drain)."""
        self.client_aborted = False
        self.partial = False
        self._deadline: float | None = None
        self._started = False

    async def open(self, total_timeout_s: float | None = None) -> None:
        """Wait for the first chunk; raises UpstreamError if the upstream fails before it.
        `total_timeout_s`, counted from now, bounds the whole stream: an upstream that never
        ends is cut with an error event when it is over."""
        if total_timeout_s is not None:
            self._deadline = asyncio.get_running_loop().time() + total_timeout_s
        try:
            self._first = await anext(self._chunks)
        except StopAsyncIteration:
            self._first = None
        except BaseException:
            await self._close_upstream()
            raise

    # --- counts ---------------------------------------------------------------------------

    @property
    def estimated(self) -> bool:
        return self._usage is None

    @property
    def prompt_tokens(self) -> int:
        if self._usage is not None:
            return int(self._usage.get("prompt_tokens") or 0)
        return estimate(self._prompt_chars)

    @property
    def completion_tokens(self) -> int:
        if self._usage is not None:
            return int(self._usage.get("completion_tokens") or 0)
        return estimate(self._completion_chars)

    # --- relay ----------------------------------------------------------------------------

    def _rewrite(self, chunk: JSON) -> JSON | None:
        """The chunk as the client should see it, or None to drop it."""
        chunk["model"] = self._target
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content") if "delta" in choice else choice.get("text")
            if isinstance(text, str):
                self._completion_chars += len(text)
            for call in delta.get("tool_calls") or ():
                self._completion_chars += len(
                    str((call.get("function") or {}).get("arguments") or "")
                )
        usage = chunk.get("usage")
        if usage:
            if reported(usage):
                self._usage = usage
            if not _carries_content(chunk):
                if not self._wants_usage:
                    return None
                chunk["choices"] = []  # OpenAI's usage chunk has no choices; litellm adds one
            elif not self._wants_usage:
                del chunk["usage"]
        return chunk

    async def events(self, finish: Callable[[], None]) -> AsyncGenerator[bytes, None]:
        """The SSE byte stream. `finish` runs once when it ends, however it ends (and `abandon`
        calls it instead for a stream whose events were never read)."""
        self._started = True
        unwatch = self._drain.watch(self._stop) if self._drain is not None else None
        try:
            if self._first is not None:
                first = self._rewrite(self._first)
                if first is not None and (frame := self._frame(first)):
                    yield frame
            cut: list[bytes] | None = None  # the gateway's own end: quota, drain
            try:
                while True:
                    if self._allowance is not None and (cut := await self._over_allowance()):
                        break
                    if self._stopping:
                        cut = self._shutting_down()
                        break
                    try:
                        # No `yield` inside the timeout: it must cancel our await, not the client's.
                        async with asyncio.timeout_at(self._deadline) as waiting:
                            self._waiting = waiting
                            chunk = await anext(self._chunks)
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        if self._stopping:
                            cut = self._shutting_down()
                            break
                        raise UpstreamError(
                            "timeout", "the stream ran past its deployment's timeout_s"
                        ) from None
                    finally:
                        self._waiting = None
                    out = self._rewrite(chunk)
                    if out is not None and (frame := self._frame(out)):
                        yield frame
            except UpstreamError as exc:
                self.error, self.partial = exc, True
                # The client reads the deployment and the kind; the operator's log the detail.
                log.warning("%s failed mid-stream (%s): %s", self._target, exc.kind, exc.detail)
                message = f"{self._target} failed mid-stream ({exc.kind})"
                for frame in self._failure(message, f"upstream_{exc.kind}"):
                    yield frame
            else:
                for frame in cut if cut is not None else await self._end():
                    yield frame
        except (asyncio.CancelledError, GeneratorExit):
            self.client_aborted = self.partial = True
            raise
        finally:
            if unwatch is not None:
                unwatch()
            await self._close_upstream()
            finish()

    def _stop(self) -> None:
        """The drain's grace is over: end after the chunk in hand, or now if waiting for one."""
        self._stopping = True
        if self._waiting is not None:
            self._waiting.reschedule(asyncio.get_running_loop().time())

    def _shutting_down(self) -> list[bytes]:
        self.cut, self.partial = "shutting_down", True
        message = f"the gateway is shutting down: {self._target}'s answer was ended"
        return self._failure(message, "shutting_down", status=503)

    async def _over_allowance(self) -> list[bytes] | None:
        """The frames ending this stream when its key may not pay for more, else None
        (reserving more first when the reservation is used up: `gateway.access.allowance`)."""
        allowance = self._allowance
        assert allowance is not None
        used = self.completion_tokens
        if allowance.covers(used):
            return None
        limit = await allowance.extend(used)
        if limit is None:
            return None
        code = "insufficient_quota" if limit == "budget" else "rate_limit_exceeded"
        self.cut, self.partial = code, True
        message = (
            f"the key's {limit} limit is reached: the answer was ended after {used} completion "
            "tokens"
        )
        return self._failure(message, code, status=429)

    # --- framing: what a relay for another dialect (the Responses API) replaces ---------------

    def _frame(self, chunk: JSON) -> bytes:
        """A chunk, already rewritten, as the bytes the client gets (empty: nothing)."""
        return sse(chunk)

    def _failure(self, message: str, code: str, status: int = 502) -> list[bytes]:
        """The last frames of a stream that ends early: the upstream broke it after its first
        chunk (502), the key could pay for no more (429), the drain ended it (503)."""
        return [sse(envelope(status, message, code=code)), DONE]

    async def _end(self) -> list[bytes]:
        """The last frames of a stream the upstream finished."""
        return [DONE]

    async def abandon(self, finish: Callable[[], None]) -> None:
        """For a stream whose events were never read (the client left before the response
        started, so the generator's `finally` never runs): close the upstream and call `finish`
        as `events` would have. Does nothing once `events` has started."""
        if self._started:
            return
        self._started = True
        self.client_aborted = self.partial = True
        await self._close_upstream()
        finish()

    async def _close_upstream(self) -> None:
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(aclose())


def _carries_content(chunk: JSON) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if choice.get("finish_reason") or any(v not in (None, "", []) for v in delta.values()):
            return True
        if choice.get("text"):
            return True
    return False


class StreamLease:
    """What a stream holds from its first chunk to its end, given back exactly once.

    `events()` is the byte stream for the response; `close()` must run after the response however
    it went (the route's response class does it). Whichever of the stream's end, the client's
    departure or `close` comes first releases: the slot (the deployment's in-flight count drops),
    the breaker hears of a failure the upstream caused mid-stream, and the ledger takes the
    stream's usage and ending and finishes the request's record.
    """

    def __init__(
        self,
        relay: StreamRelay,
        *,
        slot: Slot,
        breaker: Breaker,
        ledger: Ledger,
        price: Price,
        upstream_started: float,
    ) -> None:
        self._relay = relay
        self._slot = slot
        self._breaker = breaker
        self._ledger = ledger
        self._price = price
        self._upstream_started = upstream_started
        self._released = False
        self._events = relay.events(self.release)

    def events(self) -> AsyncIterator[bytes]:
        return self._events

    def release(self) -> None:
        """End the lease; every call after the first does nothing."""
        if self._released:
            return
        self._released = True
        relay, ledger = self._relay, self._ledger
        self._slot.release()
        if relay.error is not None and not relay.client_aborted:
            self._breaker.failure(relay.error)
        ledger.upstream(time.perf_counter() - self._upstream_started)
        ledger.usage(
            self._price, relay.prompt_tokens, relay.completion_tokens, estimated=relay.estimated
        )
        ledger.stream_ended(
            client_aborted=relay.client_aborted,
            partial=relay.partial,
            error=relay.error,
            cut=relay.cut,
        )
        ledger.finish()

    async def close(self) -> None:
        """After the response: end the stream where it stopped (its `finally` releases), or, if it
        never started, close the upstream and release as if the client had left."""
        await self._events.aclose()
        await self._relay.abandon(self.release)
