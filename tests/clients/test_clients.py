"""Today's clients (the openai SDK 3, the OpenAI Agents SDK, LangChain, pydantic-ai, the `llm`
CLI) driven against a real gateway on loopback, in front of fake upstreams.

The clients need `openai>=3`, which litellm's pin keeps out of the gateway's `.venv`, so they live
in `.venv-clients` (`make test` builds it from `deploy/local/clients-requirements.txt`). This module
starts the gateway here, runs `tests/clients/cases/cases.py` there once, and reports each of its
tests as one of its own: a row of the client matrix, `test_<client>__<case>`.
"""

from __future__ import annotations

import ast
import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from tests.support.clients import KEY, serve_for_clients
from tests.support.paths import REPO

CASES = REPO / "tests" / "clients" / "cases"
PYTHON = REPO / ".venv-clients" / "bin" / "python"


def case_names() -> list[str]:
    tree = ast.parse((CASES / "cases.py").read_text("utf-8"))
    return [
        n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
    ]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[str]]]:
    """Every case's outcomes (one per parametrization): `passed`, or the failure's text."""
    if not PYTHON.exists():
        pytest.skip(
            ".venv-clients is absent: `make test` builds it from clients-requirements.txt"
        )
    tmp = tmp_path_factory.mktemp("clients")
    served = serve_for_clients(tmp)
    report = tmp / "junit.xml"
    env = {
        **os.environ,
        "TIERGATE_URL": served.gateway.url,
        "TIERGATE_KEY": KEY,
        "TIERGATE_README": str(REPO / "README.md"),
    }
    env.pop("PYTHONPATH", None)  # the clients' environment, not the gateway's
    try:
        done = subprocess.run(
            [str(PYTHON), "-m", "pytest", "-c", str(CASES / "pytest.ini"), "-q",
             f"--junitxml={report}", str(CASES / "cases.py")],
            env=env, cwd=tmp, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    finally:
        served.stop()
    if not report.exists():
        pytest.fail(f"the client suite did not run:\n{done.stdout}\n{done.stderr}")
    found: dict[str, list[str]] = {}
    for case in ET.parse(report).iter("testcase"):
        name = case.get("name", "")
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            outcome = f"{name}: {failure.get('message')}\n{failure.text}"
        elif skipped is not None:
            outcome = f"{name}: skipped: {skipped.get('message')}"
        else:
            outcome = "passed"
        found.setdefault(name.split("[")[0], []).append(outcome)
    yield found


@pytest.mark.parametrize("case", case_names())
def test_client_case(outcomes: dict[str, list[str]], case: str) -> None:
    assert case in outcomes, f"{case} did not run"
    failed = [o for o in outcomes[case] if o != "passed"]
    assert not failed, "\n\n".join(failed)


def test_the_readme_has_every_snippet_the_cases_run() -> None:
    """Without `.venv-clients` too: each `snippet("name")` of the cases is a README block of
    Python that parses, with the placeholders the cases replace."""
    import re

    names = re.findall(r'snippet\("([\w-]+)"\)', (CASES / "cases.py").read_text("utf-8"))
    readme = (REPO / "README.md").read_text("utf-8")
    assert set(names) == {"agents", "langchain", "pydantic-ai"}
    for name in names:
        found = re.search(rf"<!-- snippet: {name} -->\s*```python\n(.*?)```", readme, re.S)
        assert found, f"README lacks the {name} snippet"
        code = found.group(1)
        ast.parse(code)
        assert "http://127.0.0.1:8080/v1" in code and "YOUR_TIERGATE_KEY" in code
