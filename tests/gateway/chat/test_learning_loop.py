"""The whole loop, made so that it cannot pass by accident: traffic, shadow verdicts, retraining
from the log, a reload, and routing that changed for one category of prompts only.

The gateway runs the shipped router (real MiniLM) in front of fake small, large and judge
upstreams. The fake judge prefers the large tier's answer for tax questions only and calls every
other pair a tie. After 30 logged requests in each of four categories, every one shadow-judged,
`tiergate router train --from-log` writes a new router into the running artifact's directory and
`POST /admin/router/reload` swaps it in. Fresh prompts, in phrasings and with subjects the log
never saw, then measure each category's share on the small tier against the same prompts before:
tax questions must fall by at least 30 points, every other category move by less than 10.

The logging policy sends every request to the small tier (threshold 1), so that every logged
request is shadow-judged; the measuring policy sends to the large tier only what the router scores
above 0.97, which none of the fresh prompts reached with the shipped router (its scores: 0.09 to
0.965), so that every category starts at 100% on the small tier.
"""

from __future__ import annotations

import itertools
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.cli.main import main
from router import Router, load_router
from router.model import default_artifact_dir
from tests.support.gateway import Gateway, start, two_tier_config
from tests.support.judging import prefer_marked
from tests.support.upstream import FakeUpstream, Reply, Script

TARGET = "tax"
# Per category: templates (the last one only for fresh prompts) and fillers (the last two of the
# first list only for fresh prompts), so that no fresh prompt, nor its phrasing, is in the log.
CATEGORIES: dict[str, tuple[list[str], list[list[str]]]] = {
    "tax": (
        [
            "How do I deduct {a} on my {b} tax return as a {c}?",
            "Can a {c} claim {a} as a tax deduction on the {b} return?",
            "As a {c}, what records do I need to write off {a} on my {b} taxes?",
        ],
        [
            [
                "home office costs",
                "mileage",
                "health insurance premiums",
                "student loan interest",
                "charitable donations",
                "a new laptop",
                "moving expenses",
                "business meals",
            ],
            ["2023", "2024", "federal", "state"],
            ["freelancer", "nurse", "teacher", "landlord", "small business owner"],
        ],
    ),
    "cooking": (
        [
            "How long should I cook {a} for {b}, and at what temperature for {c}?",
            "What is the best way to season {a} for {b} when cooking for {c}?",
            "Give me a simple recipe using {a} for {b} that feeds {c}.",
        ],
        [
            [
                "chicken thighs",
                "salmon",
                "potatoes",
                "brown rice",
                "a pork roast",
                "carrots",
                "lentils",
                "broccoli",
            ],
            ["dinner", "a picnic", "meal prep", "a family lunch"],
            ["four people", "two people", "a party", "one person", "kids"],
        ],
    ),
    "travel": (
        [
            "What should I pack for a {a} trip to {b} in {c}?",
            "Which neighbourhoods should I stay in for a {a} visit to {b} during {c}?",
            "How much money should I budget for a {a} holiday in {b} in {c}?",
        ],
        [
            ["weekend", "week-long", "hiking", "business", "beach", "family", "ski", "honeymoon"],
            ["Lisbon", "Tokyo", "Iceland", "Peru", "Morocco", "Norway", "Vietnam", "Chile"],
            ["winter", "summer", "spring", "autumn"],
        ],
    ),
    "garden": (
        [
            "When is the best time to plant {a} in {b}, and how often should I water them in {c}?",
            "Why are my {a} in {b} turning yellow during {c}?",
            "What fertiliser works best for {a} growing in {b} in {c}?",
        ],
        [
            [
                "tomatoes",
                "tulip bulbs",
                "garlic",
                "strawberries",
                "roses",
                "lettuce",
                "peppers",
                "lavender",
            ],
            ["clay soil", "raised beds", "pots", "a greenhouse"],
            ["hot weather", "the first month", "dry spells", "spring"],
        ],
    ),
}
LOGGED, FRESH = 30, 15
THRESHOLD = 0.97


def prompts(category: str, fresh: bool, count: int) -> list[str]:
    templates, (subjects, places, others) = CATEGORIES[category]
    held = set(subjects[-2:])
    if fresh:
        combos = [
            (t, s, p, o) for t in templates[-1:] for s in held for p in places for o in others
        ]
    else:
        combos = [
            (t, s, p, o)
            for t, s, p, o in itertools.product(templates[:-1], subjects, places, others)
            if s not in held
        ]
    random.Random(f"{category}-{fresh}").shuffle(combos)
    return [t.format(a=s, b=p, c=o) for t, s, p, o in combos[:count]]


@pytest.fixture(scope="module")
def trained() -> Router:
    return load_router()


@pytest.fixture
def judge() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream("judge-model").start()
    yield upstream
    upstream.stop()


def loop_config(small: FakeUpstream, large: FakeUpstream, judge: FakeUpstream) -> dict[str, Any]:
    config = two_tier_config(small.url, large.url)
    config["deployments"]["judge-a"] = {"model": "openai/judge-model", "api_base": judge.url}
    for deployment in config["deployments"].values():
        deployment["backend"] = "openai-compatible"
    shadow = {"fraction": 1.0, "judge": "judge-a", "daily_budget_usd": 100.0}
    config["policies"] = {
        "learned": {"threshold": 1.0, "shadow": shadow},
        "measure": {"threshold": THRESHOLD},
    }
    config["default_policy"] = "learned"
    config["keys"] = [{"id": "ops", "key_env": "OPS_KEY", "admin": True}]
    return config


def small_shares(gateway: Gateway, fresh: dict[str, list[str]]) -> dict[str, float]:
    """Each category's share of fresh prompts the small tier answered (not shadowed, not kept)."""
    shares = {}
    for category, texts in fresh.items():
        routes = []
        for text in texts:
            body = {"model": "auto:measure", "messages": [{"role": "user", "content": text}]}
            r = gateway.post(body, key="ops-secret")
            assert r.status_code == 200, r.text
            routes.append(r.headers["x-tiergate-route"])
        shares[category] = routes.count("small") / len(routes)
    return shares


def test_shadow_verdicts_retraining_and_reload_move_one_category_only(
    tmp_path: Path,
    trained: Router,
    small: FakeUpstream,
    large: FakeUpstream,
    judge: FakeUpstream,
    capsys: pytest.CaptureFixture[str],
) -> None:
    artifact = tmp_path / "router-artifact"
    shutil.copytree(default_artifact_dir(), artifact)
    small.default = Reply(text="A short answer from the small model.")
    large.default = Reply(text="A careful answer from the large model.")
    judge.default = Script(prefer_marked("large model", when=lambda request: "tax" in request))
    gateway = start(
        tmp_path,
        loop_config(small, large, judge),
        {"OPS_KEY": "ops-secret"},
        scorer=trained,
        router_artifact=artifact,
    )
    try:
        fresh = {c: prompts(c, True, FRESH) for c in CATEGORIES}
        logged = [(c, t) for c in CATEGORIES for t in prompts(c, False, LOGGED)]
        assert not {t for _, t in logged} & {t for ts in fresh.values() for t in ts}
        before = small_shares(gateway, fresh)

        random.Random(0).shuffle(logged)
        for _, text in logged:
            body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
            assert gateway.post(body, key="ops-secret").status_code == 200
        db = tmp_path / "logs" / "requests.db"
        wait_for_outcomes(db, len(logged))

        code = main(
            [
                "router",
                "train",
                "--from-log",
                f"sqlite:///{db}",
                "--out",
                str(artifact),
                "--baseline",
                str(artifact),
                "--name",
                "learned-from-log",
            ]
        )
        assert code == 0
        reloaded = httpx.post(
            gateway.root + "/admin/router/reload",
            headers={"authorization": "Bearer ops-secret"},
            timeout=60,
        )
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["router"]["name"] == "learned-from-log"
        after = small_shares(gateway, fresh)
    finally:
        gateway.stop()
    with capsys.disabled():
        print("\nsmall-tier share of fresh prompts, before -> after retraining from the log:")
        for category in CATEGORIES:
            print(f"  {category:8s} {before[category]:5.0%} -> {after[category]:5.0%}")
    assert before[TARGET] - after[TARGET] >= 0.30
    for category in CATEGORIES:
        if category != TARGET:
            assert abs(after[category] - before[category]) < 0.10, category


def wait_for_outcomes(db: Path, n: int, timeout_s: float = 120.0) -> None:
    from gateway.storage import Database

    database = Database.open(f"sqlite:///{db}")
    try:
        deadline = time.monotonic() + timeout_s
        while len(database.store.outcomes(kind="shadow")) < n:
            assert time.monotonic() < deadline, "the shadow verdicts did not all arrive"
            time.sleep(0.2)
    finally:
        database.close()
