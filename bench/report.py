"""Results: one table for the terminal, bench/results.json, and the README's Markdown.

python -m bench.report      # the Markdown table of the last bench/results.json
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"
COMMAND = "make bench"


@dataclass
class Row:
    """One metric. `better` says which way is good; the ratio is always platform ÷ baseline."""

    metric: str
    platform: float | None
    baseline: float | None = None
    better: str = "lower"

    @property
    def ratio(self) -> float | None:
        if self.platform is None or not self.baseline:
            return None
        return self.platform / self.baseline


@dataclass
class Result:
    number: int
    title: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def percentile(values: list[float], pct: float) -> float:
    """The `pct` percentile of `values`, interpolating between the nearest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def machine(database: str) -> dict[str, Any]:
    """What the numbers were measured on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(mem_kb / 1024**2, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "database": database,
        "load_average_at_start": load_average(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    return [round(x, 2) for x in os.getloadavg()]


def write(
    results: list[Result], info: dict[str, Any], sizes: dict[str, Any], runtime: float
) -> dict[str, Any]:
    report = {
        "command": COMMAND,
        "machine": info,
        "runtime_seconds": round(runtime),
        "sizes": sizes,
        "scenarios": [
            {**asdict(result), "rows": [{**asdict(row), "ratio": row.ratio} for row in result.rows]}
            for result in results
        ],
    }
    RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _lines(report: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    rows, notes = [], []
    for scenario in report["scenarios"]:
        mark = f"[{scenario['number']}]"
        for i, row in enumerate(scenario["rows"]):
            ratio = f"{fmt(row['ratio'])}×" if row["ratio"] is not None else "—"
            rows.append(
                [
                    f"{scenario['number']}. {scenario['title']}" if i == 0 else "",
                    f"{row['metric']} ({row['better']} is better)",
                    fmt(row["platform"]),
                    fmt(row["baseline"]),
                    ratio,
                ]
            )
        notes += [f"{mark} {note}" for note in scenario["notes"]]
    return rows, notes


HEADER = ["scenario", "metric", "platform", "baseline", "ratio"]


def table(report: dict[str, Any]) -> str:
    """The plain-text table printed by `make bench`."""
    rows, notes = _lines(report)
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    rule = "  ".join("-" * w for w in widths)

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(HEADER), rule, *map(line, rows), rule, *notes])


def markdown(report: dict[str, Any]) -> str:
    """The table and its notes as Markdown, for the README."""
    rows, notes = _lines(report)
    out = ["| " + " | ".join(HEADER) + " |", "|---|---|--:|--:|--:|"]
    out += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(out + [""] + [f"- {note}" for note in notes])


if __name__ == "__main__":
    sys.stdout.write(markdown(json.loads(RESULTS.read_text())) + "\n")
