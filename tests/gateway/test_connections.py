"""Connections as `tiergate serve` accepts them (issue 13, item 6), over raw sockets on loopback:
idle, dribbled, never-ending and short requests are closed on time with a 408, oversize headers
are a 431, keep-alive ends, and past the connection cap a new connection is refused with a 503
and a log line. Short limits here; the defaults are a production proxy's."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import Gateway, start, two_tier_config
from tests.support.upstream import FakeUpstream

LIMITS = {
    "header_timeout_s": 1.0,
    "body_timeout_s": 1.0,
    "keepalive_timeout_s": 1.0,
    "max_header_bytes": 8192,
}
BODY = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}).encode()


@pytest.fixture
def gw(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> Iterator[Gateway]:
    gateway = start(tmp_path, two_tier_config(small.url, large.url), **LIMITS)
    yield gateway
    gateway.stop()


def connect(gw: Gateway) -> socket.socket:
    host, port = gw.root.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def read_until_closed(sock: socket.socket, limit_s: float = 10.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started, got = time.monotonic(), b""
    sock.settimeout(limit_s)
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return got, time.monotonic() - started


def error_of(reply: bytes) -> dict[str, str]:
    return json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]  # type: ignore[no-any-return]


def test_an_idle_connection_is_closed_after_the_header_timeout(gw: Gateway) -> None:
    with connect(gw) as sock:
        reply, took = read_until_closed(sock)
    assert reply == b"" and 0.8 < took < 3, took


def test_headers_dribbled_a_byte_at_a_time_get_a_408(gw: Gateway) -> None:
    request = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: " + b"a" * 100
    with connect(gw) as sock:
        started = time.monotonic()
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
                if time.monotonic() - started > 5:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply, _ = read_until_closed(sock)
        took = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
    assert error_of(reply)["code"] == "request_timeout"
    assert took < 3, took


@pytest.mark.parametrize("kind", ["never-ending chunked", "shorter than its length"])
def test_a_body_that_does_not_arrive_in_time_gets_a_408(gw: Gateway, kind: str) -> None:
    with connect(gw) as sock:
        if kind == "never-ending chunked":
            head = b"transfer-encoding: chunked\r\n\r\n"
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n" + head)
            started = time.monotonic()
            try:
                while time.monotonic() - started < 4:  # a chunk every 0.2 s, never the last one
                    sock.sendall(b"1\r\n \r\n")
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            head = b"content-length: %d\r\n\r\n" % (len(BODY) + 100)
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n" + head + BODY)
            started = time.monotonic()
        reply, _ = read_until_closed(sock)
        took = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
    assert error_of(reply)["code"] == "request_timeout"
    assert took < 3, took


def test_headers_over_the_limit_get_a_431_and_health_stays_prompt(gw: Gateway) -> None:
    with connect(gw) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 64 * 1024)
        reply, took = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:100]
    assert error_of(reply)["code"] == "request_header_fields_too_large"
    assert took < 2
    assert httpx.get(gw.root + "/health", headers={"x-fine": "a" * 4000}).status_code == 200


def test_a_kept_alive_connection_is_closed_when_idle(gw: Gateway) -> None:
    with connect(gw) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        reply, took = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 200") and b'{"status":"ok"}' in reply
    assert 0.8 < took < 3, took


def test_past_the_connection_cap_a_new_connection_is_refused_with_a_log_line(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    gw = start(
        tmp_path, two_tier_config(small.url, large.url), header_timeout_s=30, max_connections=4
    )
    held = [connect(gw) for _ in range(4)]
    try:
        time.sleep(0.2)
        with connect(gw) as extra:
            extra.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            reply, _ = read_until_closed(extra)
        assert reply.startswith(b"HTTP/1.1 503"), reply[:100]
        assert error_of(reply)["code"] == "too_many_connections"
        assert any("TIERGATE_MAX_CONNECTIONS" in m for m in caplog.messages), caplog.messages
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(gw.root + "/health").status_code == 200
    gw.stop()


def test_health_answers_while_slow_connections_are_held(gw: Gateway) -> None:
    """The issue's slowloris: 100 connections dribbling headers must not delay anyone else."""
    stop = threading.Event()

    def dribble() -> None:
        try:
            with connect(gw) as sock:
                sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
                while not stop.wait(0.3):
                    sock.sendall(b"x")
        except OSError:
            pass

    threads = [threading.Thread(target=dribble) for _ in range(100)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        latencies = []
        for _ in range(10):
            started = time.monotonic()
            assert httpx.get(gw.root + "/health").status_code == 200
            latencies.append(time.monotonic() - started)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert max(latencies) < 0.5, latencies
