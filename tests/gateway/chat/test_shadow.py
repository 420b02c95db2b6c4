"""Shadow judging over real HTTP: fake small, large and judge upstreams, outcomes in the database.

After the client has the small tier's answer, the large tier answers too and the judge compares
the two in both orders; the verdict is stored with the request; the daily budget, shared through
the counter store, stops shadowing once spent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.chat.shadow import judge_messages, parse_choice, verdict_of
from gateway.storage import Database
from tests.support.gateway import Gateway, start, two_tier_config
from tests.support.judging import prefer_marked
from tests.support.upstream import FakeUpstream, Reply, Script


@pytest.fixture
def judge() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream("judge-model").start()
    yield upstream
    upstream.stop()


def shadow_config(
    small: FakeUpstream, large: FakeUpstream, judge: FakeUpstream, **shadow: Any
) -> dict[str, Any]:
    config = two_tier_config(small.url, large.url)
    config["deployments"]["judge-a"] = {
        "model": "openai/judge-model",
        "api_base": judge.url,
        "price": {"input_per_mtok": 1.0, "output_per_mtok": 1.0},
    }
    for deployment in config["deployments"].values():
        deployment["backend"] = "openai-compatible"
    spec = {"fraction": 1.0, "judge": "judge-a", "daily_budget_usd": 5.0, **shadow}
    config["policies"] = {"balanced": {"threshold": 0.5, "shadow": spec}}
    return config


def outcomes(gateway_dir: Path, n: int, timeout_s: float = 10.0) -> list[Any]:
    database = Database.open(f"sqlite:///{gateway_dir / 'logs' / 'requests.db'}")
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = database.store.outcomes()
            if len(rows) >= n or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)
    finally:
        database.close()


def ask(gateway: Gateway, content: str) -> str:
    r = gateway.post({"model": "auto", "messages": [{"role": "user", "content": content}]})
    assert r.status_code == 200, r.text
    return r.headers["x-request-id"]


def test_the_verdict_of_both_orders_is_stored_with_the_request(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, judge: FakeUpstream
) -> None:
    small.default = Reply(text="a small answer")
    large.default = Reply(text="a large answer")
    judge.default = Script(prefer_marked("large answer", when=lambda request: "tax" in request))
    gateway = start(tmp_path, shadow_config(small, large, judge))
    try:
        worse = ask(gateway, "How do I file my tax return?")
        fine = ask(gateway, "Suggest a name for my cat")
        hard = gateway.post(
            {"model": "auto", "messages": [{"role": "user", "content": "HARD: a proof"}]}
        )
        assert hard.headers["x-tiergate-route"] == "large"
        rows = {row.request_id: row for row in outcomes(tmp_path, 2)}
        assert set(rows) == {worse, fine}, "a request the large tier answered is not shadowed"
        assert rows[worse].verdict == 0.0 and rows[fine].verdict == 1.0
        row = rows[worse]
        assert (row.kind, row.weak_tier, row.strong_tier) == ("shadow", "small", "large")
        assert (row.weak_deployment, row.strong_deployment, row.judge) == (
            "small-a",
            "large-a",
            "judge-a",
        )
        assert row.policy == "balanced" and row.features == {"answer_chars": 14}
        assert row.content is None, "no text kept unless the operator opts in"
        assert row.expires_at is not None and row.expires_at > row.created_at + 29 * 86400
        # Both orders: the judge saw the small answer first once and second once.
        prompts = [str(seen.body["messages"][-1]["content"]) for seen in judge.history]
        assert len(prompts) == 4
        firsts = [p.split("[Answer A]\n")[1].split("\n")[0] for p in prompts]
        assert sorted(firsts) == ["a large answer"] * 2 + ["a small answer"] * 2
        shadowing = [seen for seen in large.history if "HARD" not in str(seen.body)]
        assert [seen.body["max_tokens"] for seen in shadowing] == [1024, 1024]
        metrics = gateway.metrics()
        assert (
            'tiergate_shadow_verdicts_total{category="none",policy="balanced",tier="small"} 2.0'
            in metrics
        )
        assert (
            'tiergate_shadow_agreement_total{category="none",policy="balanced",tier="small"} 1.0'
            in metrics
        )
    finally:
        gateway.stop()


def test_the_daily_budget_stops_shadowing(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, judge: FakeUpstream
) -> None:
    """The first shadow reserves its worst case ($0.0155 for the large answer capped at 1,024
    tokens, plus the judge) and spends $0.0152; then the $0.025 budget cannot take a second."""
    large.default = Reply(text="long", prompt_tokens=10, completion_tokens=1010)
    judge.default = Script(prefer_marked("long"))
    gateway = start(tmp_path, shadow_config(small, large, judge, daily_budget_usd=0.025))
    try:
        ask(gateway, "first question")
        assert len(outcomes(tmp_path, 1)) == 1
        ask(gateway, "second question")
        deadline = time.monotonic() + 10
        while 'reason="budget"' not in gateway.metrics() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (
            'tiergate_shadow_skipped_total{policy="balanced",reason="budget"} 1.0'
            in gateway.metrics()
        )
        assert len(large.history) == 1 and len(judge.history) == 2
        assert len(outcomes(tmp_path, 2, timeout_s=0.5)) == 1
    finally:
        gateway.stop()


def test_without_the_fraction_nothing_is_shadowed(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, judge: FakeUpstream
) -> None:
    gateway = start(tmp_path, shadow_config(small, large, judge, fraction=0.0))
    try:
        ask(gateway, "a question")
        time.sleep(0.3)
        assert not large.history and not judge.history
    finally:
        gateway.stop()


def test_judge_replies_and_verdicts() -> None:
    assert [parse_choice(t) for t in ("A", "b.", "Tie", "Answer A is better", "??")] == [
        "A",
        "B",
        "tie",
        "A",
        None,
    ]
    assert verdict_of("A", "B") == 1.0  # the cheaper answer won in both orders
    assert verdict_of("B", "A") == 0.0
    assert verdict_of("A", "A") == 0.5  # position bias: split
    assert verdict_of("tie", None) == 1.0 and verdict_of(None, None) is None
    messages = judge_messages("Q", "first", "second")
    assert "[Answer A]\nfirst" in messages[-1]["content"]


@pytest.mark.parametrize("action", ["keep_local", "redact"])
def test_requests_with_protected_personal_data_are_never_shadowed(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, judge: FakeUpstream, action: str
) -> None:
    """Shadowing sends the request as it came to the most capable tier and the judge: never one
    whose personal data the policy keeps local or redacts. The same policy shadows the rest."""
    judge.default = Reply(text="A")
    config = shadow_config(small, large, judge)
    config["deployments"]["small-a"]["local"] = True
    config["policies"]["balanced"]["pii"] = action
    gateway = start(tmp_path, config)
    try:
        ask(gateway, "Write to jane.doe@example.com about the invoice")
        plain = ask(gateway, "Write to the team about the invoice")
        assert [row.request_id for row in outcomes(tmp_path, 1)] == [plain]
        time.sleep(0.3)
        assert [row.request_id for row in outcomes(tmp_path, 2, timeout_s=0.2)] == [plain]
        assert len(large.history) == 1 and len(judge.history) == 2
        assert all("jane.doe" not in str(seen.body) for seen in (*large.history, *judge.history))
    finally:
        gateway.stop()


def test_text_is_kept_only_when_the_operator_opts_in(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream, judge: FakeUpstream
) -> None:
    small.default = Reply(text="a small answer")
    judge.default = Reply(text="A")
    gateway = start(tmp_path, shadow_config(small, large, judge), outcome_content=True)
    try:
        request_id = ask(gateway, "Suggest a name for my cat")
        (row,) = outcomes(tmp_path, 1)
        assert row.request_id == request_id and row.content is not None
        assert row.content["answer"] == "a small answer"
        assert "Suggest a name for my cat" in str(row.content["request"])
    finally:
        gateway.stop()
