"""What a stream may still generate under its key's budget and tpm limit.

A request reserves, before it goes upstream, its prompt plus a completion cap against the key's
tpm and budget (`gateway.access.quota`), and the gateway sends that cap upstream
(`gateway.chat.plan`). An upstream that ignores the cap would stream on, past what was reserved
and past the key's budget (one such stream spent four times a key's daily budget). So the stream's
relay asks its `StreamAllowance` before each next chunk: while the tokens counted so far (plus a
little headroom) are covered by the reservation, it goes on; past it, the allowance reserves
another block, and when the key has nothing left the stream is ended with an SSE error event and
`[DONE]` (`gateway.chat.stream`). Every token is reserved before it is relayed, so concurrent
streams of one key can never spend more than its budget together, whichever counters hold it.
"""

from __future__ import annotations

from gateway.access.quota import NANO_USD, Quota, Ticket
from gateway.config import Price

HEADROOM_TOKENS = 16
"""Tokens a stream must have reserved beyond what it has used before it reads another chunk: a
chunk carries a token or a few, so the next one is paid for before it arrives."""
MIN_BLOCK_TOKENS = 64


class StreamAllowance:
    def __init__(
        self, quota: Quota, ticket: Ticket, price: Price, *, prompt_tokens: int, block: int
    ) -> None:
        """`prompt_tokens` is what the reservation assumed for the prompt; `block` how many more
        completion tokens to reserve at a time once the reservation is used up."""
        self._quota = quota
        self._ticket = ticket
        self._price = price
        self._prompt = prompt_tokens
        self._block = max(MIN_BLOCK_TOKENS, block)

    @classmethod
    def of(
        cls, quota: Quota, ticket: Ticket | None, price: Price, *, prompt_tokens: int, block: int
    ) -> StreamAllowance | None:
        """The allowance of a request that holds a tpm or budget reservation, else None."""
        if ticket is None or (ticket.tokens_key is None and ticket.usd_key is None):
            return None
        return cls(quota, ticket, price, prompt_tokens=prompt_tokens, block=block)

    def covers(self, completion_tokens: int) -> bool:
        """Whether the reservation already pays for `completion_tokens` and the headroom."""
        tokens, nano = self._needs(completion_tokens + HEADROOM_TOKENS)
        return tokens <= 0 and nano <= 0

    async def extend(self, completion_tokens: int) -> str | None:
        """Reserve what `covers(completion_tokens)` needs, a block more if the key has it. None
        when reserved; else the limit that has nothing left (`budget`, `tpm`)."""
        tokens, nano = self._needs(completion_tokens + HEADROOM_TOKENS + self._block)
        if await self._quota.extend(self._ticket, tokens=tokens, nano=nano) is None:
            return None
        tokens, nano = self._needs(completion_tokens + HEADROOM_TOKENS)
        return await self._quota.extend(self._ticket, tokens=tokens, nano=nano)

    def _needs(self, completion_tokens: int) -> tuple[int, int]:
        """(tokens, nano-USD) missing from the reservation for `completion_tokens`."""
        ticket = self._ticket
        tokens = nano = 0
        if ticket.tokens_key is not None:
            tokens = self._prompt + completion_tokens - ticket.tokens_reserved
        if ticket.usd_key is not None:
            cost = self._price.cost(self._prompt, completion_tokens)
            nano = round(cost * NANO_USD) - ticket.nano_reserved
        return max(0, tokens), max(0, nano)
