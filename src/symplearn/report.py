"""Run folders of experiments and runs: ``config.json``, ``metrics.json``, ``report.md``, PNG
figures and any data files (``trajectory.npz``), written atomically into one folder."""

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
        arrays: data files, ``{file name (.npz): {array name: array}}`` (numpy arrays or
            tensors; written compressed, no pickled objects).
        files: further files, ``{file name: str or bytes}``.
    """

    title: str
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    columns: list[Column] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, str | bytes] = field(default_factory=dict)

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


def write_run(
    out: str | os.PathLike, config: Any, report: Report, *, wall_time_s: float, replace: bool = False
) -> Path:
    """Write a run folder atomically.

    The folder holds ``config.json`` (the configuration, ``"run"``: the module that ran it, and
    package versions), ``metrics.json`` (``{"rows": ..., **report.metrics, "wall_time_s": ...}``),
    ``report.md`` (title, table, sections, figures), the figures as PNG and ``report.arrays`` /
    ``report.files``.

    Args:
        out: the run folder.
        config: the run's configuration (a dataclass or a dict), JSON-able.
        report: what the run produced.
        wall_time_s: the run's wall time in seconds.
        replace: ``True``: the whole folder appears at once and replaces an existing one (check
            it before the work with :func:`symplearn._files.check_output_folder`); ``False``:
            files are moved in one by one and files already in ``out`` that the run does not
            write are kept.

    Returns:
        The folder.
    """
    out = Path(out)
    cfg = config_dict(config)
    if dataclasses.is_dataclass(config):
        cfg["run"] = type(config).__module__
    cfg = {**cfg, **_files.provenance()}
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
    with _files.staged_folder(out, replace=replace) as tmp:
        for name, arrays in report.arrays.items():
            _files.write_npz(tmp / name, **{k: _numpy(v) for k, v in arrays.items()})
        for name, content in report.files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            _files.write_bytes(tmp / name, data)
        for name, fig in report.figures.items():
            _files.save_figure(fig, tmp / name)
        _files.write_json(tmp / "metrics.json", metrics)
        _files.write_text(tmp / "report.md", "\n".join(md))
        _files.write_json(tmp / "config.json", cfg)  # last: the folder's marker
    return out


def _numpy(x: Any) -> Any:
    if hasattr(x, "detach"):  # torch tensors
        return x.detach().cpu().numpy()
    return x
