"""The layout's rules, checked on the source: which package may import which, how long a module
may be, where the environment is read, and what tests and benchmarks may import.

- Arrows point down only: `gateway` may use `router` and `policies`; `router` and `policies`
  import neither each other nor `gateway`; only `router.training` (and the tests) import
  `router.training`.
- `policies/` is pure: no `os`, no `open(`, no YAML (the issue's `grep`).
- No module in `gateway/`, `router/` or `policies/` is over 400 lines.
- Only the settings modules read the environment.
- No test module imports another test module (shared code lives in `tests/support`), and
  `bench/` imports nothing from `tests/`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import REPO

PACKAGES = ("gateway", "router", "policies")
MAX_LINES = 400
FORBIDDEN = {
    "gateway": set(),
    "router": {"gateway", "policies"},
    "policies": {"gateway", "router"},
}


def modules(*roots: str) -> Iterator[Path]:
    for root in roots:
        yield from sorted((REPO / root).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function, as a dotted name."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def name_of(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_arrows_point_down(package: str) -> None:
    wrong = []
    for path in modules(package):
        for name in imported(path):
            top = name.split(".")[0]
            if top in FORBIDDEN[package]:
                wrong.append(f"{name_of(path)} imports {name}")
            training = name == "router.training" or name.startswith("router.training.")
            if training and not name_of(path).startswith("router.training"):
                wrong.append(f"{name_of(path)} imports offline code {name}")
    assert wrong == []


def test_policies_do_no_io() -> None:
    """`grep -rn "import os\\|open(\\|yaml" policies/` finds nothing."""
    pattern = re.compile(r"import os|open\(|yaml")
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in sorted((REPO / "policies").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
        for n, line in enumerate(path.read_text("utf-8", errors="replace").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(REPO)): count
        for path in modules(*PACKAGES)
        if (count := len(path.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_only_the_settings_modules_read_the_environment() -> None:
    """`os.environ.setdefault` (telling a library to stay offline) is a write, not a read."""
    reads = re.compile(r"os\.environ(?!\.setdefault)|getenv\(")
    allowed = {REPO / "gateway" / "settings.py", REPO / "router" / "settings.py"}
    found = [
        f"{path.relative_to(REPO)}:{n}"
        for path in modules(*PACKAGES)
        if path not in allowed
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if reads.search(line)
    ]
    assert found == []


def test_no_test_module_imports_another_and_bench_imports_no_tests() -> None:
    """Shared test code lives in `tests/support`; a test module is never imported, neither as
    `tests.<folder>.<module>` nor by its bare name (pytest's rootdir-relative imports)."""
    test_modules = {
        path.stem for path in modules("tests") if "support" not in path.parts
    } - {"__init__"}
    wrong = []
    for path in modules("tests"):
        for name in imported(path):
            outside_support = name.startswith("tests.") and not name.startswith("tests.support")
            if outside_support or name.split(".")[0] in test_modules:
                wrong.append(f"{name_of(path)} imports {name}")
    for path in modules("bench"):
        for name in imported(path):
            if name == "tests" or name.startswith("tests."):
                wrong.append(f"{name_of(path)} imports {name}")
    assert wrong == []
