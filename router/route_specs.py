"""What an operator route is, where presets and the background set come from, and how a config's
``routes:`` mapping turns into route specs.

A route is a name, a description and at least five examples; the route classifier (router/routes.py)
learns it from those texts alone. Where the request then goes (a tier, a deployment) is the
gateway's business: ``parse_routes`` accepts ``tier`` and ``deployment`` keys and leaves them to the
config loader. Presets ship as YAML in ``router/presets/`` and name the tier each route is meant for
as ``cheapest`` or ``most_capable``, which the gateway maps onto its own tiers. The background set
(``router/background/``) holds the generic requests that make up the implicit "none of these" class.

``parse_routes`` is a small pure function standing in until the gateway's config loader owns the
``routes:`` schema; every error names the route, the field, the value and what is accepted.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from router.errors import RouterError

MIN_EXAMPLES = 5
NONE_CATEGORY = "none"  # what a request no route claims is called (header, log, metric label)
PRESET_KEY = "preset"
PRESET_TIERS = ("cheapest", "most_capable")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
TARGET_KEYS = ("tier", "deployment")
_ROUTE_KEYS = ("description", "examples", *TARGET_KEYS)
DEFAULT_BACKGROUND = "generic-v1"

PresetTier = Literal["cheapest", "most_capable"]


@dataclass(frozen=True)
class RouteSpec:
    """One operator route as the classifier sees it; ``description`` may be empty."""

    name: str
    description: str
    examples: tuple[str, ...]

    def texts(self) -> list[str]:
        """The texts the classifier learns this route from: its examples, then its description."""
        return [*self.examples, *([self.description] if self.description else [])]


@dataclass(frozen=True)
class Preset:
    """A shipped set of routes with the tier each is meant for (``cheapest``/``most_capable``)."""

    name: str
    version: int
    routes: tuple[RouteSpec, ...]
    tiers: dict[str, PresetTier]


@dataclass(frozen=True)
class Background:
    """The generic requests of the "none of these" class, grouped by kind.

    ``digest`` covers every text, so editing the file without bumping ``version`` still refits.
    """

    name: str
    version: int
    kinds: dict[str, tuple[str, ...]]

    @property
    def digest(self) -> str:
        body = json.dumps([self.name, self.version, self.kinds], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()

    def texts(self) -> tuple[list[str], list[str]]:
        """(texts, kind of each text), in file order."""
        texts = [t for items in self.kinds.values() for t in items]
        kinds = [k for k, items in self.kinds.items() for _ in items]
        return texts, kinds


def route_spec(name: Any, body: Any, where: str = "routes") -> RouteSpec:
    """One route from its config entry; RouterError naming the route and field otherwise."""
    if not isinstance(name, str) or not _NAME.match(name) or name == NONE_CATEGORY:
        raise RouterError(
            f"{where}: route name {name!r} is not accepted; use 1-64 lowercase letters, digits, "
            f"'-' or '_' (starting with a letter or digit), and not {NONE_CATEGORY!r}"
        )
    if not isinstance(body, Mapping):
        raise RouterError(
            f"{where}.{name}: expected a mapping with 'description' and 'examples', "
            f"got {type(body).__name__}"
        )
    unknown = sorted(str(k) for k in body if k not in _ROUTE_KEYS)
    if unknown:
        raise RouterError(
            f"{where}.{name}: unknown field(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(_ROUTE_KEYS)}"
        )
    description = body.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise RouterError(
            f"{where}.{name}.description: expected a string, got {type(description).__name__}"
        )
    examples = body.get("examples")
    if not isinstance(examples, list):
        raise RouterError(
            f"{where}.{name}.examples: expected a list of at least {MIN_EXAMPLES} strings, "
            f"got {type(examples).__name__}"
        )
    for index, example in enumerate(examples):
        if not isinstance(example, str) or not example.strip():
            # YAML reads an unquoted "Sort these: a, b" as a mapping: say so.
            hint = "; quote examples that contain ': '" if isinstance(example, dict) else ""
            raise RouterError(
                f"{where}.{name}.examples[{index}]: expected a non-empty string, "
                f"got {example!r}{hint}"
            )
    distinct = tuple(dict.fromkeys(e.strip() for e in examples))
    if len(distinct) < MIN_EXAMPLES:
        raise RouterError(
            f"{where}.{name}.examples: route {name!r} has {len(distinct)} distinct example(s); "
            f"at least {MIN_EXAMPLES} are needed to learn it"
        )
    return RouteSpec(name, description.strip(), distinct)


def parse_routes(routes: Any, where: str = "routes") -> list[RouteSpec]:
    """The route specs of a config's ``routes:`` mapping, in the order written.

    ``{preset: NAME}`` starts from a shipped preset; other entries beside it add routes or replace
    the preset's route of the same name, and an entry that only names a target (``code: {tier:
    coder}``) keeps the preset's route and moves it. An empty mapping or None means no routes.
    """
    if routes is None:
        return []
    if not isinstance(routes, Mapping):
        raise RouterError(
            f"{where}: expected a mapping of route name to route (or {{preset: NAME}}), "
            f"got {type(routes).__name__}"
        )
    specs: dict[str, RouteSpec] = {}
    if PRESET_KEY in routes:
        preset = load_preset(routes[PRESET_KEY], where=f"{where}.{PRESET_KEY}")
        specs.update((spec.name, spec) for spec in preset.routes)
    for name, body in routes.items():
        if name == PRESET_KEY:
            continue
        if name in specs and isinstance(body, Mapping) and set(body) <= set(TARGET_KEYS):
            continue  # a preset route moved to another target: same texts
        specs[str(name)] = route_spec(name, body, where)
    return list(specs.values())


def routes_from_yaml(path: str | Path) -> list[RouteSpec]:
    """The ``routes:`` mapping of a YAML config file (what ``fit-routes --config`` reads)."""
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RouterError(f"{path}: cannot read the config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise RouterError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(doc, Mapping) or not doc.get("routes"):
        raise RouterError(f"{path}: no 'routes:' mapping; expected routes: {{NAME: {{...}}}}")
    return parse_routes(doc["routes"], where=f"{path}: routes")


def preset_names() -> list[str]:
    """The presets shipped in ``router/presets/``, sorted."""
    return sorted(p.stem for p in _package_dir("presets").glob("*.yaml"))


def load_preset(name: Any, where: str = "preset") -> Preset:
    """A shipped preset by name; RouterError listing the shipped ones otherwise."""
    import yaml

    if not isinstance(name, str) or name not in preset_names():
        raise RouterError(
            f"{where}: unknown preset {name!r}; shipped presets: {', '.join(preset_names())}"
        )
    path = _package_dir("presets") / f"{name}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    routes, tiers = [], {}
    for route, body in doc["routes"].items():
        tier = body.get("tier")
        if tier not in PRESET_TIERS:
            raise RouterError(
                f"{path}: route {route!r} has tier {tier!r}; expected one of "
                f"{', '.join(PRESET_TIERS)}"
            )
        routes.append(route_spec(route, {k: v for k, v in body.items() if k != "tier"}, str(path)))
        tiers[route] = tier
    return Preset(str(doc["name"]), int(doc["version"]), tuple(routes), tiers)


def load_background(path: str | Path | None = None) -> Background:
    """The background set: the shipped one, or a YAML file of the same shape
    (``version``, ``kinds: {kind: [text, ...]}``)."""
    import yaml

    default = _package_dir("background") / f"{DEFAULT_BACKGROUND}.yaml"
    file = Path(path) if path is not None else default
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
        kinds = {
            str(kind): tuple(str(t) for t in items if isinstance(t, str) and t.strip())
            for kind, items in doc["kinds"].items()
        }
        version = int(doc["version"])
    except OSError as exc:
        raise RouterError(f"{file}: cannot read the background set ({exc.strerror})") from None
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RouterError(
            f"{file}: malformed background set ({exc}); expected version and kinds: {{kind: [...]}}"
        ) from None
    if sum(len(v) for v in kinds.values()) < MIN_EXAMPLES:
        raise RouterError(f"{file}: the background set needs at least {MIN_EXAMPLES} texts")
    return Background(file.stem, version, kinds)


def _package_dir(name: str) -> Path:
    return Path(str(resources.files("router") / name))
