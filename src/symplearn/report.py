"""Run folders of experiments: ``config.json``, ``metrics.json``, ``report.md`` and PNG figures,
written atomically into one folder."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _files


@dataclass
class Column:
    """A table column: the metric ``key`` in each row, its ``header`` and a format spec."""

    key: str
    header: str
    fmt: str = ".3g"


@dataclass
class Report:
    """What an experiment produced.

    Attributes:
        title: report heading.
        rows: table rows, ``{row name: {metric key: value}}``; becomes ``metrics.json["rows"]``.
        columns: which metrics the markdown table shows, in order.
        figures: ``{file name (.png): matplotlib Figure}``.
        sections: markdown paragraphs placed after the table (text, notes, comparisons).
        metrics: further top-level entries of ``metrics.json`` (``wall_time_s`` is added by
            :func:`write_run`).
    """

    title: str
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    columns: list[Column] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        """The rows as a markdown table."""
        head = "| | " + " | ".join(c.header for c in self.columns) + " |"
        sep = "|---|" + "---:|" * len(self.columns)
        lines = [head, sep]
        for name, row in self.rows.items():
            cells = [format_value(row.get(c.key), c.fmt) for c in self.columns]
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def format_value(value: Any, fmt: str = ".3g") -> str:
    """Format a table cell: numbers with ``fmt``, missing values as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return format(value, fmt)
    return str(value)


def config_dict(config: Any) -> dict[str, Any]:
    """A dataclass configuration as a JSON-able dict."""
    if dataclasses.is_dataclass(config):
        return dataclasses.asdict(config)
    return dict(config)


def write_run(out: str | os.PathLike, config: Any, report: Report, *, wall_time_s: float) -> Path:
    """Write a run folder atomically: ``config.json`` (with package versions),
    ``metrics.json`` (``{"rows": ..., "wall_time_s": ..., **report.metrics}``), ``report.md``
    (title, table, sections, figures) and the figures as PNG. Returns the folder."""
    out = Path(out)
    cfg = {**config_dict(config), **_files.provenance()}
    metrics = {"rows": report.rows, **report.metrics, "wall_time_s": wall_time_s}
    md = [f"# {report.title}", "", report.table(), ""]
    for sec in report.sections:
        md += [sec.strip(), ""]
    for name in report.figures:
        md += [f"![{Path(name).stem}]({name})", ""]
    md += [
        f"_Wall time {wall_time_s:.1f} s; symplearn {cfg['symplearn_version']}, "
        f"torch {cfg['torch_version']}. Configuration in `config.json`, numbers in `metrics.json`._",
        "",
    ]
    with _files.staged_folder(out) as tmp:
        _files.write_json(tmp / "config.json", cfg)
        _files.write_json(tmp / "metrics.json", metrics)
        for name, fig in report.figures.items():
            _files.save_figure(fig, tmp / name)
        _files.write_text(tmp / "report.md", "\n".join(md))
    return out
