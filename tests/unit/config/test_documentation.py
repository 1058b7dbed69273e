"""The documented configuration matches the settings the code reads."""

import re
from pathlib import Path

from trademk.config import Settings

ROOT = Path(__file__).resolve().parents[3]


def _env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        names.add(str(choices[0]) if choices else name.upper())
    return names


def test_env_example_documents_exactly_the_settings() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    assert documented == _env_names()


def test_readme_configuration_table_names_every_setting() -> None:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Configuration") : text.index("## Command line")]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    assert _env_names() <= documented
