"""Counters for rate limits and budgets: in this process, or in Redis shared by every replica.

A counter is an integer under a key that expires (a minute's request count, a day's spend in
nano-dollars). The one operation that matters is `reserve`: add `amount` only if the total stays
within `limit`, atomically, and say whether it did. In Redis that is one Lua script, so two replicas
reserving at the same moment can never both take the last unit; `adjust` then corrects a
reservation by what the request really used. In memory the same operations run on a dict, which
is atomic because the event loop runs one coroutine at a time.

Redis being down is the caller's policy (`gateway.access.quota`): the store raises `CounterError`
within `timeout_s` instead of hanging a request, and counts the failures it saw.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

RESERVE_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if current + amount > tonumber(ARGV[2]) then
  return {0, current}
end
local total = redis.call('INCRBY', KEYS[1], amount)
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return {1, total}
"""

ADJUST_LUA = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return total
"""


class CounterError(Exception):
    """The shared store could not be reached or did not answer in time."""


class CounterStore(Protocol):
    async def reserve(self, key: str, amount: int, limit: int, ttl_s: int) -> tuple[bool, int]:
        """Add `amount` if the total stays <= `limit`: (taken, total after, or total seen)."""
        ...

    async def adjust(self, key: str, delta: int, ttl_s: int) -> int: ...

    async def get(self, key: str) -> int: ...

    async def aclose(self) -> None: ...


class MemoryCounters:
    """Counters for one process. Expired keys are swept as new ones arrive, so memory stays
    bounded by the keys live in one window."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._values: dict[str, tuple[int, float]] = {}
        self._next_sweep = 0.0
        self.errors = 0

    def _live(self, key: str) -> int:
        value = self._values.get(key)
        if value is None or value[1] <= self._clock():
            return 0
        return value[0]

    def _set(self, key: str, total: int, ttl_s: int) -> None:
        now = self._clock()
        old = self._values.get(key)
        expires = old[1] if old is not None and old[1] > now else now + ttl_s
        self._values[key] = (total, expires)
        if now >= self._next_sweep:
            self._values = {k: v for k, v in self._values.items() if v[1] > now}
            self._next_sweep = now + 10.0

    async def reserve(self, key: str, amount: int, limit: int, ttl_s: int) -> tuple[bool, int]:
        current = self._live(key)
        if current + amount > limit:
            return False, current
        self._set(key, current + amount, ttl_s)
        return True, current + amount

    async def adjust(self, key: str, delta: int, ttl_s: int) -> int:
        total = self._live(key) + delta
        self._set(key, total, ttl_s)
        return total

    async def get(self, key: str) -> int:
        return self._live(key)

    async def aclose(self) -> None:
        return None


class RedisCounters:
    """Counters in Redis, shared by every replica that names the same `url` and `prefix`."""

    def __init__(self, url: str, *, prefix: str = "tiergate", timeout_s: float = 0.25) -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry_on_timeout=False,
            decode_responses=True,
        )
        self._prefix = prefix
        self._reserve = self._redis.register_script(RESERVE_LUA)
        self._adjust = self._redis.register_script(ADJUST_LUA)
        self.errors = 0

    async def _run(self, script: Any, key: str, *args: int) -> Any:
        from redis.exceptions import RedisError

        try:
            return await script(keys=[f"{self._prefix}:{key}"], args=list(args))
        except (RedisError, OSError, TimeoutError) as exc:
            raise await self._failed(exc) from exc

    async def _failed(self, exc: Exception) -> CounterError:
        """Count the failure and drop pooled connections: a dead server's sockets must not be
        reused, nor left for the garbage collector after the event loop is gone."""
        self.errors += 1
        with contextlib.suppress(Exception):
            await self._redis.connection_pool.disconnect()
        return CounterError(f"redis: {type(exc).__name__}: {exc}")

    async def reserve(self, key: str, amount: int, limit: int, ttl_s: int) -> tuple[bool, int]:
        taken, total = await self._run(self._reserve, key, amount, limit, ttl_s)
        return bool(taken), int(total)

    async def adjust(self, key: str, delta: int, ttl_s: int) -> int:
        return int(await self._run(self._adjust, key, delta, ttl_s))

    async def get(self, key: str) -> int:
        from redis.exceptions import RedisError

        try:
            value = await self._redis.get(f"{self._prefix}:{key}")
        except (RedisError, OSError, TimeoutError) as exc:
            raise await self._failed(exc) from exc
        return int(value or 0)

    async def aclose(self) -> None:
        await self._redis.aclose()


def build_store(redis_url: str | None, timeout_s: float = 0.25) -> CounterStore:
    """Redis when a URL is configured, this process's memory otherwise."""
    if redis_url:
        return RedisCounters(redis_url, timeout_s=timeout_s)
    return MemoryCounters()
