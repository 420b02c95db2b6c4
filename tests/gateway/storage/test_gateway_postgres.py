"""A real gateway writing its log to Postgres, and the commands that read it: the same answers
as from SQLite; a database that cannot be reached stops `tiergate serve` with a clear message."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.storage import DatabaseURL, open_request_writer
from gateway.telemetry.requestlog import RequestLog
from tests.support.gateway import start_gateway, two_tier_config, write_config
from tests.support.ports import free_port
from tests.support.postgres import count
from tests.support.records import make_record, wait_until
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.postgres


async def _fire(url: str, n: int, concurrency: int) -> None:
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        content = "HARD: prove it" if i % 3 == 0 else "Say hello."
        async with gate:
            if i % 2:
                stream = await client.chat.completions.create(
                    model="auto", messages=[{"role": "user", "content": content}], stream=True
                )
                async for _ in stream:
                    pass
            else:
                await client.chat.completions.create(
                    model="auto", messages=[{"role": "user", "content": content}]
                )

    await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()


def test_a_gateway_on_postgres_writes_a_row_per_request(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, postgres_url: str
) -> None:
    gateway = start_gateway(
        tmp_path, two_tier_config(small.url, large.url), request_log_url=postgres_url
    )
    try:
        asyncio.run(_fire(gateway.url, 100, concurrency=32))
        wait_until(lambda: count(postgres_url) == 100, 10, f"{count(postgres_url)} rows, not 100")
    finally:
        gateway.stop()
    assert not (tmp_path / "logs" / "requests.db").exists()  # nothing in the pod


def test_the_config_file_can_name_the_database(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, postgres_url: str
) -> None:
    config = two_tier_config(small.url, large.url, request_log_url=postgres_url)
    gateway = start_gateway(tmp_path, config)
    try:
        asyncio.run(_fire(gateway.url, 4, concurrency=2))
        wait_until(lambda: count(postgres_url) == 4, 10, "rows not written")
    finally:
        gateway.stop()


def _fill(url: DatabaseURL, now: float | None = None) -> None:
    log = RequestLog(open_request_writer(url))
    now = time.time() if now is None else now
    for i in range(6):
        log.record(make_record(request_id=f"r{i}", started_at=now - 60, latency_s=0.1 * (i + 1)))
    log.record(
        make_record(
            request_id="big",
            started_at=now - 60,
            served_tier="large",
            deployment="big",
            cost_usd=0.001,
            counterfactual_cost_usd=0.001,
        )
    )
    log.record(make_record(request_id="err", started_at=now - 60, status_code=502))
    log.record(
        make_record(
            request_id="gone", started_at=now - 60, client_aborted=True, partial=True, stream=True
        )
    )
    log.record(make_record(request_id="old", started_at=now - 3 * 86400))
    log.close()


def test_logs_summary_and_export_read_postgres_as_they_read_sqlite(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite = DatabaseURL.sqlite(tmp_path / "requests.db")
    postgres = DatabaseURL.parse(postgres_url)
    outputs = {}
    now = time.time()
    for url in (sqlite, postgres):
        _fill(url, now)
        assert main(["logs", "summary", "--url", url.url, "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        out = tmp_path / f"{url.dialect}.jsonl"
        assert main(["logs", "export", "--url", url.url, "--since", "all", "--out", str(out)]) == 0
        capsys.readouterr()
        outputs[url.dialect] = (
            summary,
            [json.loads(line) for line in out.read_text().splitlines()],
        )
    assert outputs["sqlite"][0] == outputs["postgres"][0]
    assert outputs["sqlite"][0]["total"]["requests"] == 9
    assert outputs["sqlite"][1] == outputs["postgres"][1]
    assert len(outputs["postgres"][1]) == 10


def test_logs_read_the_url_from_the_environment(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(DatabaseURL.parse(postgres_url))
    monkeypatch.setenv("TIERGATE_REQUEST_LOG_URL", postgres_url)
    assert main(["logs", "summary", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["requests"] == 9


def test_serve_refuses_to_start_without_its_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, two_tier_config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"))
    monkeypatch.setenv("TIERGATE_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv(
        "TIERGATE_REQUEST_LOG_URL", f"postgresql://u:hunter2@127.0.0.1:{free_port()}/tiergate"
    )
    assert main(["serve", "--config", str(path), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the database at postgresql://u:***@127.0.0.1" in err
    assert "hunter2" not in err
