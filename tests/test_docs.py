"""The README and docs/ say what the code does: every setting and endpoint
they name exists, the README stays short, and no diary is kept in them (no broker)."""

import re

import pytest

from humidity import core
from humidity.core.alarm_limits import load_config
from humidity.core.settings import DEFAULT_ALARMS_FILE, SETTINGS, Settings
from humidity.service import compose
from tests import helpers

README = helpers.ROOT / "README.md"
DOCS = sorted((helpers.ROOT / "docs").glob("*.md"))
PAGES = ("alarms", "notifications-and-audit", "api", "architecture", "guarantees", "operations", "performance",
         "testing")
#: Variables of the tests and tools, not of the service.
NOT_SETTINGS = {"HUMIDITY_TEST_FAULT", "HUMIDITY_MODEL_EXAMPLES", "HUMIDITY_TEST_KAFKA_PORT",
                "HUMIDITY_TEST_KAFKA_DATA_DIR", core.CHOICE}


def texts():
    return [(path.name, path.read_text()) for path in [README, *DOCS]]


def test_the_readme_is_short_and_the_docs_have_their_pages():
    assert len(README.read_text().splitlines()) <= 400
    assert {path.stem for path in DOCS} >= set(PAGES)
    assert len((helpers.ROOT / "docs" / "performance.md").read_text().splitlines()) <= 150
    linked = set(re.findall(r"\(docs/([a-z-]+)\.md\)", README.read_text()))
    assert linked >= set(PAGES), "the README links every page"


def test_every_setting_named_in_the_docs_exists():
    known = {field.metadata["variable"] for field in SETTINGS} | NOT_SETTINGS
    for name, text in texts():
        tokens = set(re.findall(r"HUMIDITY_[A-Z0-9_]+\*?", text))
        named = {t for t in tokens if not t.endswith(("*", "_"))}
        prefixes = {t.rstrip("*") for t in tokens - named}  # HUMIDITY_KAFKA_*: a family of settings
        unknown = named - known | {p for p in prefixes if not any(k.startswith(p) for k in known)}
        assert not unknown, f"{name} names settings that do not exist: {sorted(unknown)}"


@pytest.fixture(scope="module")
def routes(tmp_path_factory):
    service = compose(Settings(app_id="docs-test", data_dir=tmp_path_factory.mktemp("data")),
                      load_config(DEFAULT_ALARMS_FILE))
    return set(service.app.web.views)


def documented_paths(text: str) -> set[str]:
    """Every path in backticks, as ``/api/devices/{device}/history`` (``[.csv]``: both forms)."""
    found = set()
    for path in re.findall(r"`(?:GET |POST |DELETE )?(/(?:api|health|metrics)[a-zA-Z0-9_/{}.\[\]-]*)", text):
        path = path.split("?")[0].rstrip(".")
        if "[" in path:
            found |= {re.sub(r"\[[^]]*\]", "", path), re.sub(r"[\[\]]", "", path)}
        else:
            found.add(path)
    return found


def route_of(path: str, routes: set[str]) -> bool:
    pattern = re.compile(r"[^/]+")
    return any(re.fullmatch(re.sub(r"\{[^}]+\}", pattern.pattern, re.escape(route).replace(r"\{", "{")
                                   .replace(r"\}", "}")), path) or route == path for route in routes)


def test_every_endpoint_in_the_api_page_and_the_readme_is_routed(routes):
    for name in ("api.md", "README.md"):
        text = (README if name == "README.md" else helpers.ROOT / "docs" / name).read_text()
        paths = documented_paths(text)
        assert paths, name
        missing = sorted(p for p in paths if p not in routes and not route_of(p, routes))
        assert not missing, f"{name} documents paths no view serves: {missing}"


DIARY = [r"\bissue \d+", r"\bnot kept\b", r"\btried\b", r"\b(?:first|second|third|[a-z]+th|twenty-[a-z]+) part\b",
         r"\b[0-9a-f]{7,40}\b(?<![0-9]{7})"]


def test_no_diary_in_the_readme_or_the_docs():
    for name, text in texts():
        prose = re.sub(r"```.*?```", "", text, flags=re.S)  # examples may hold dates and ids
        prose = re.sub(r"`[^`]*`", "", prose)
        for pattern in DIARY + [r"\b20\d\d-\d\d-\d\d\b"]:
            found = re.findall(pattern, prose)
            assert not found, f"{name}: {pattern} {found[:5]}"
