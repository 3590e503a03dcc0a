""".env.example lists every setting, with its default and one comment line saying what it is.

A setting added to config.py must be added to .env.example too: this test says so.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatkit_backend.config import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
ASSIGNMENT = re.compile(r"^# ([A-Z][A-Z0-9_]*)=(.*)$")
HOW_TO_ADD = (
    "Every setting in config.py must be in .env.example, commented out with its default "
    "(empty when unset), under one comment line saying what it does."
)


def example_lines() -> list[str]:
    return EXAMPLE.read_text().splitlines()


def example_values() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in example_lines():
        if match := ASSIGNMENT.match(line):
            assert match[1] not in values, f"{match[1]} is listed twice in .env.example"
            values[match[1]] = match[2]
    return values


def test_env_example_lists_exactly_the_settings() -> None:
    listed = set(example_values())
    settings = {name.upper() for name in Settings.model_fields}
    missing, unknown = sorted(settings - listed), sorted(listed - settings)
    assert not missing, f"missing from .env.example: {', '.join(missing)}. {HOW_TO_ADD}"
    assert not unknown, f"in .env.example but not settings in config.py: {', '.join(unknown)}"


def test_each_setting_has_one_comment_line_above_it() -> None:
    lines = example_lines()
    for number, line in enumerate(lines):
        if ASSIGNMENT.match(line):
            above = lines[number - 1]
            assert above.startswith("# ") and not ASSIGNMENT.match(above), (
                f"{line!r} needs a comment line above it. {HOW_TO_ADD}"
            )


def test_each_setting_shows_its_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of a developer's
    for name, value in example_values().items():
        field = name.lower()
        default = Settings.model_fields[field].get_default(call_default_factory=True)
        if default is None:
            assert value == "", f"{name} is unset by default: write `# {name}=`. {HOW_TO_ADD}"
        else:
            parsed = getattr(load_settings(**{field: value}), field)
            assert parsed == default, f"{name}: .env.example says {value!r}, the default is " + (
                f"{default!r}. {HOW_TO_ADD}"
            )
