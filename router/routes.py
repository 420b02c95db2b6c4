"""The operator-route classifier: which described route, if any, a request belongs to.

Operators describe the traffic they know (``routes:`` in the config, or a shipped preset); each
route is a name, a description and at least five examples. ``load_routes`` fits a multinomial
logistic regression over the routes plus an implicit "none of these" class learnt from a shipped
background set of generic requests (router/route_fitting.py says how), on the same MiniLM vectors
the outcome router reads: the last user turn, at the router artifact's word-piece limit. The gateway
therefore embeds a request once (``Router.embed``) and hands the vectors to both
``Router.score_embedded`` and ``Routes.classify_embedded``; the latter is a matrix product.

A fit takes seconds (embedding a few hundred texts, six small fits) and is cached as a small JSON
file (no pickle, with a checksum) under ``~/.cache/tiergate/routes/`` (``TIERGATE_ROUTES_CACHE``),
named by a content hash of the routes, the encoder, the word-piece limit, the background set and the
fitting recipe: any change refits, nothing else does. An unreadable, corrupted or unwritable cache
only costs a refit. ``tiergate router fit-routes`` writes the same file ahead of time, and the
shipped presets' fits live in ``router/presets/fitted/`` (read after the cache), so
``routes: {preset: general}`` starts without fitting.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from router.artifact import write_atomic
from router.conversation import ConversationError, Item, last_user_text, to_conversation
from router.encoder import Encoder, effective_length
from router.errors import RouterError
from router.model import CHARS_PER_PIECE, readable
from router.route_specs import NONE_CATEGORY, Background, RouteSpec, load_background

log = logging.getLogger(__name__)
CACHE_ENV = "TIERGATE_ROUTES_CACHE"
FORMAT_VERSION = 1
FIT_VERSION = 1  # bump whenever router/route_fitting.py changes what a fit produces
DEFAULT_CONFIDENCE = 0.6


@dataclass(frozen=True)
class RouteMatch:
    """The classifier's answer for one request.

    ``category``: the route whose probability reached the confidence, else None (header: "none").
    ``probability``: the probability of the most likely route, ``best``, whether or not it reached
    the confidence; a policy may apply its own threshold to it.
    """

    category: str | None
    probability: float
    best: str


@dataclass(frozen=True)
class RouteExplanation:
    """``explain``'s answer: the match, every class's probability and the nearest examples of
    the best route with their cosine similarity to the request."""

    match: RouteMatch
    probabilities: dict[str, float]
    nearest: list[tuple[str, float]]


@dataclass
class RouteModel:
    """A fitted classifier without its encoder: the JSON-serialisable part the cache holds."""

    key: str
    routes: list[str]
    encoder_name: str
    encoder_dimension: int
    max_length: int
    coef: np.ndarray  # (len(routes) + 1, dimension); the last row is "none"
    intercept: np.ndarray
    temperature: float
    training: dict[str, Any]

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """Class probabilities, one row per vector: the routes in order, then "none"."""
        x = np.asarray(vectors, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.encoder_dimension:
            raise RouterError(
                f"route vectors of shape {x.shape}; expected (n, {self.encoder_dimension})"
            )
        z = (x @ self.coef.T + self.intercept) / self.temperature
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return np.asarray(z / z.sum(axis=1, keepdims=True))

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "key": self.key,
            "routes": list(self.routes),
            "encoder": {
                "name": self.encoder_name,
                "dimension": self.encoder_dimension,
                "max_length": self.max_length,
            },
            "model": {
                "coef": [[float(v) for v in row] for row in self.coef],
                "intercept": [float(v) for v in self.intercept],
                "temperature": float(self.temperature),
            },
            "training": self.training,
        }
        body["checksum"] = "sha256:" + _digest(body)
        return body

    @classmethod
    def from_json(cls, doc: Any) -> RouteModel:
        """Check and read a cached fit; RouterError says what is wrong with it."""
        if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION:
            raise RouterError(f"not a route classifier of format {FORMAT_VERSION}")
        checksum = doc.pop("checksum", None)
        if checksum != "sha256:" + _digest(doc):
            raise RouterError("checksum mismatch; the file is corrupted or was edited")
        try:
            model = cls(
                key=str(doc["key"]),
                routes=[str(r) for r in doc["routes"]],
                encoder_name=str(doc["encoder"]["name"]),
                encoder_dimension=int(doc["encoder"]["dimension"]),
                max_length=int(doc["encoder"]["max_length"]),
                coef=np.asarray(doc["model"]["coef"], dtype=np.float64),
                intercept=np.asarray(doc["model"]["intercept"], dtype=np.float64),
                temperature=float(doc["model"]["temperature"]),
                training=dict(doc.get("training", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RouterError(f"missing or malformed field ({exc})") from None
        classes = len(model.routes) + 1
        if model.coef.shape != (classes, model.encoder_dimension) or model.intercept.shape != (
            classes,
        ):
            raise RouterError(f"weights of shape {model.coef.shape} for {classes} classes")
        if not model.temperature > 0:
            raise RouterError(f"temperature {model.temperature}; expected a positive number")
        return model


class Routes:
    """Classifies requests into operator routes; safe to share between threads.

    ``confidence`` (route_confidence, default 0.6) is the probability a route needs to be named.
    """

    def __init__(
        self,
        model: RouteModel,
        specs: Sequence[RouteSpec],
        encoder: Encoder,
        confidence: float = DEFAULT_CONFIDENCE,
    ) -> None:
        if [s.name for s in specs] != model.routes:
            raise RouterError("the fitted routes do not match the given route specs")
        if model.encoder_name != encoder.name or model.encoder_dimension != encoder.dimension:
            raise RouterError(
                f"routes fitted with {model.encoder_name!r} but the encoder is {encoder.name!r}"
            )
        self.model = model
        self.specs = {s.name: s for s in specs}
        self.encoder = encoder
        self.confidence = check_confidence(confidence)
        self._examples: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        """The route names, in class order."""
        return list(self.model.routes)

    def classify(self, items: Sequence[Item]) -> list[RouteMatch]:
        """The match of each item (a prompt or an OpenAI messages list), embedding them here.

        The gateway should embed once and call ``classify_embedded`` instead.
        """
        return self.classify_embedded(self.embed(items))

    def classify_embedded(self, vectors: np.ndarray) -> list[RouteMatch]:
        """The match of each row of ``vectors``: ``Router.embed(items).vectors`` or ``embed``."""
        probabilities = self.model.probabilities(vectors)[:, :-1]
        best = probabilities.argmax(axis=1)
        matches = []
        for row, index in zip(probabilities, best, strict=True):
            p = float(row[index])
            name = self.model.routes[index]
            matches.append(RouteMatch(name if p >= self.confidence else None, p, name))
        return matches

    def embed(self, items: Sequence[Item]) -> np.ndarray:
        """The vectors the classifier reads: each item's last user turn, as the router embeds it."""
        texts = []
        for index, item in enumerate(items):
            try:
                text = last_user_text(to_conversation(item))
            except ConversationError as exc:
                raise RouterError(f"item {index}: {exc}") from None
            texts.append(readable(text, self.model.max_length * CHARS_PER_PIECE))  # as Router cuts
        return self.encoder.encode(texts, max_length=self.model.max_length)

    def explain(self, item: Item, nearest: int = 3) -> RouteExplanation:
        """The match of one item, every class's probability and the ``nearest`` examples of its
        best route by cosine (for ``tiergate router explain``; embeds that route's examples)."""
        vector = self.embed([item])
        probabilities = self.model.probabilities(vector)[0]
        match = self.classify_embedded(vector)[0]
        examples = self._example_vectors(match.best)
        cosines = examples @ vector[0]
        order = np.argsort(-cosines)[:nearest]
        texts = self.specs[match.best].examples
        return RouteExplanation(
            match,
            dict(zip([*self.names, NONE_CATEGORY], map(float, probabilities), strict=True)),
            [(texts[i], float(cosines[i])) for i in order],
        )

    def _example_vectors(self, route: str) -> np.ndarray:
        with self._lock:
            if route not in self._examples:
                self._examples[route] = self.encoder.encode(
                    list(self.specs[route].examples), max_length=self.model.max_length
                )
            return self._examples[route]


def check_confidence(confidence: Any) -> float:
    """``route_confidence`` checked: a number in (0, 1]."""
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or math.isnan(confidence)
        or not 0.0 < confidence <= 1.0
    ):
        raise RouterError(f"route_confidence {confidence!r}; expected a number in (0, 1]")
    return float(confidence)


def shipped_dir() -> Path:
    """The fits shipped with the presets (``fit-routes --out router/presets/fitted``)."""
    return Path(str(resources.files("router") / "presets" / "fitted"))


def cache_dir() -> Path:
    """Where fitted route classifiers are kept: TIERGATE_ROUTES_CACHE, else
    ~/.cache/tiergate/routes."""
    from router.settings import RouterSettings

    return RouterSettings().routes_cache_dir()


def content_key(
    specs: Sequence[RouteSpec], encoder: Encoder, max_length: int, background: Background
) -> str:
    """The hash naming a fit: routes (names, descriptions, examples, in order), the encoder and
    its word-piece limit, the background set and the fitting recipe's version."""
    body = {
        "fit_version": FIT_VERSION,
        "encoder": [encoder.name, encoder.dimension, max_length],
        "background": [background.name, background.version, background.digest],
        "routes": [[s.name, s.description, list(s.examples)] for s in specs],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]


def load_routes(
    specs: Sequence[RouteSpec],
    encoder: Encoder,
    *,
    max_length: int | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    cache: str | Path | None = None,
    background: Background | None = None,
) -> Routes:
    """The classifier for ``specs``: read from the cache when its content hash matches, else fitted
    (and cached when the directory is writable).

    ``max_length``: the router artifact's ``encoder_max_length``, so that the vectors are shared.
    ``cache``: the directory (default ``cache_dir()``); ``fit-routes --out`` writes one.
    """
    if not specs:
        raise RouterError("no routes to classify; describe at least one route")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise RouterError(f"route names must be unique; got {names}")
    confidence = check_confidence(confidence)
    length = effective_length(max_length, encoder.max_seq_length)
    background = background or load_background()
    key = content_key(specs, encoder, length, background)
    path = Path(cache) if cache is not None else cache_dir()
    model = read_cached(path, key) or read_cached(shipped_dir(), key)
    if model is None:
        model = fit_routes(specs, encoder, length, background, key)
        save_model(model, path)
    return Routes(model, specs, encoder, confidence)


def fit_routes(
    specs: Sequence[RouteSpec], encoder: Encoder, max_length: int, background: Background, key: str
) -> RouteModel:
    """Embed the routes' texts and the background set, and fit (router/route_fitting.py)."""
    from router import route_fitting

    start = time.perf_counter()
    route_texts = [s.texts() for s in specs]
    bg_texts, bg_kinds = background.texts()
    flat = [t for texts in route_texts for t in texts]
    vectors = encoder.encode([*flat, *bg_texts], max_length=max_length)
    per_route, offset = [], 0
    for texts in route_texts:
        per_route.append(vectors[offset : offset + len(texts)])
        offset += len(texts)
    embedded = time.perf_counter()
    fitted = route_fitting.fit(per_route, vectors[offset:], bg_kinds)
    training = {
        **fitted.summary,
        "fit_version": FIT_VERSION,
        "background_set": f"{background.name} v{background.version}",
        "seconds": round(time.perf_counter() - start, 2),
        "fit_seconds": round(time.perf_counter() - embedded, 2),
    }
    return RouteModel(
        key=key,
        routes=[s.name for s in specs],
        encoder_name=encoder.name,
        encoder_dimension=encoder.dimension,
        max_length=max_length,
        # Six decimals: what the cache file holds, so a fresh fit and a cached one agree exactly.
        coef=np.round(fitted.coef, 6),
        intercept=np.round(fitted.intercept, 6),
        temperature=round(fitted.temperature, 6),
        training=training,
    )


def read_cached(directory: Path, key: str) -> RouteModel | None:
    """The cached fit named ``key``, or None when it is missing, unreadable or damaged."""
    path = directory / f"{key}.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("route cache %s unreadable (%s); fitting again", path, exc.strerror)
        return None
    try:
        model = RouteModel.from_json(json.loads(text))
    except (ValueError, RouterError) as exc:
        log.warning("route cache %s damaged (%s); fitting again", path, exc)
        return None
    if model.key != key:
        log.warning("route cache %s holds another fit; fitting again", path)
        return None
    return model


def save_model(model: RouteModel, directory: Path) -> Path | None:
    """Write ``<key>.json`` into ``directory`` atomically; None (and a warning) if it cannot."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{model.key}.json"
        write_atomic(target, json.dumps(model.to_json(), separators=(",", ":")) + "\n")
    except OSError as exc:
        log.warning("cannot cache the route classifier in %s (%s)", directory, exc.strerror)
        return None
    return target


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
