"""Operator routes with the shipped router: the real MiniLM embeds each request once, and the
fitted classifier names its route on the same vectors (the fixture config of the route tests)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from gateway.app import create_app
from gateway.chat.scoring import score_batch
from gateway.settings import Settings
from router import Router, load_router, load_routes
from router.route_specs import parse_routes
from tests.support.gateway import chat, two_tier_config
from tests.support.paths import REPO
from tests.support.upstream import FakeUpstream, serve_in_thread

FIXTURE = REPO / "tests" / "router" / "routes_data" / "fixture_config.yaml"


@pytest.fixture(scope="module")
def trained() -> Router:
    return load_router()


@pytest.fixture(scope="module")
def routes_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("routes-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIERGATE_ROUTES_CACHE", str(cache))
        yield cache


def test_the_gateway_fits_the_configs_routes_and_names_them(
    tmp_path: Path,
    trained: Router,
    routes_cache: Path,
    small: FakeUpstream,
    large: FakeUpstream,
) -> None:
    config = two_tier_config(small.url, large.url)
    config["routes"] = yaml.safe_load(FIXTURE.read_text())["routes"]
    path = tmp_path / "tiergate.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    app = create_app(Settings(config_path=path, log_dir=tmp_path / "logs"), scorer=trained, env={})
    server, thread, sock = serve_in_thread(app)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/chat/completions"
    try:
        asked = {
            "You took money from my card two times for the same purchase.": "billing",
            "Has my parcel been sent yet?": "shipping",
            "Go through this master services agreement and point out anything that puts us at "
            "risk.": "legal-review",
            "What is the capital of France?": "none",
        }
        got = {}
        for text in asked:
            r = httpx.post(url, json=chat(text, max_tokens=5), timeout=30)
            got[text] = (r.headers["x-tiergate-category"], r.headers["x-tiergate-reason"])
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    assert {t: c for t, (c, _) in got.items()} == asked
    assert got["Has my parcel been sent yet?"][1] == "route:shipping"
    assert got["What is the capital of France?"][1] == "score"
    assert len(list(routes_cache.glob("*.json"))) == 1, "fitted once and cached"


class CountingEncoder:
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.dimension = inner.name, inner.dimension
        self.max_seq_length, self.runtime = inner.max_seq_length, inner.runtime
        self.texts = 0

    def encode(self, texts: Sequence[str], **kw: Any) -> np.ndarray:
        self.texts += len(texts)
        return np.asarray(self.inner.encode(texts, **kw))

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))


def test_a_request_is_embedded_once_for_its_score_and_its_route(
    trained: Router, routes_cache: Path
) -> None:
    encoder = CountingEncoder(trained.encoder)
    router = Router(trained.artifact, encoder, cache_size=0)  # type: ignore[arg-type]
    specs = parse_routes(yaml.safe_load(FIXTURE.read_text())["routes"])
    routes = load_routes(specs, encoder, max_length=trained.artifact.encoder_max_length)  # type: ignore[arg-type]
    items = ["Where is my package?", "Review this NDA clause.", "Tell me a joke."]
    encoder.texts = 0
    scores, matches = score_batch(router, routes, items)
    assert encoder.texts == len(items)
    assert np.allclose(scores, trained.score(items), atol=1e-9)
    assert matches is not None
    assert [m.category for m in matches] == ["shipping", "legal-review", None]
