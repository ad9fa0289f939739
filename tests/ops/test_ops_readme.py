"""The README's settings table lists every environment variable settings.py reads."""

from __future__ import annotations

import re

from tests.support.platform import ROOT


def _table_rows(readme: str, heading: str) -> set[str]:
    section = readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, re.MULTILINE))


def test_every_setting_is_in_the_readme_settings_table() -> None:
    read = set(
        re.findall(
            r'env_\w+\(\s*"([A-Z][A-Z0-9_]*)"', (ROOT / "meeting_intel/settings.py").read_text()
        )
    )
    listed = _table_rows((ROOT / "README.md").read_text(), "Settings")
    assert read, "no settings found: has settings.py stopped using the env readers?"
    assert sorted(read - listed) == [], "add these to the README's Settings table"


def test_the_operations_section_lists_every_metric_series() -> None:
    from prometheus_client import Counter, Histogram

    from meeting_intel.ops import metrics

    names = {
        f"{m._name}_total" if isinstance(m, Counter) else m._name
        for m in vars(metrics).values()
        if isinstance(m, (Counter, Histogram))
    }
    operations = (ROOT / "README.md").read_text().split("\n## Operations\n", 1)[1]
    assert names
    for name in sorted(names):
        assert f"`{name}`" in operations, name
