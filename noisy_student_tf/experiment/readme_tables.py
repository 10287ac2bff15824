"""README blocks generated from files: result tables and the layout.

A README block

    <!-- generated: experiment results/fashion_mnist_demo/report.json -->
    | ... generated table ... |
    <!-- /generated -->

is regenerated from what it names (paths relative to the README, globs
allowed, several separated by spaces): `experiment` reads the driver's
`report.json`, `ablation` reads `scripts/ablate.py`'s `ablation.json`, `method`
`scripts/run_method.py`'s `report.json`
(both committed under `results/`), `benchmark` lists every ratio of
`scripts/benchmark.py` output files with its goal and status,
`benchmark_rows` their measured rows, `include`
copies a markdown file a
program wrote (e.g. `scripts/corruption_oracle.py`'s `oracle.md`),
`layout` lists the packages and modules of the given directories with the
first line of their docstrings.
`scripts/readme_tables.py` rewrites the blocks; its `--check` (run by a
test) fails when the README and the files disagree, so the text cannot
drift from the data or the tree.
"""

import ast
import glob
import os
import re

from noisy_student_tf import io_utils
from noisy_student_tf.experiment import report as report_lib

BLOCK = re.compile(
    r"(<!-- generated: (?P<kind>\w+) (?P<paths>[^>]+?) -->\n)"
    r"(?P<body>.*?)"
    r"(<!-- /generated -->)", re.S)


def _pct(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def _robustness(report, name):
    """(corruption error, FGSM top-1 at eps 8) of one model, if measured."""
    models = (report.get("robustness") or {}).get("models") or {}
    model = models.get(name) or {}
    corruption = (model.get("corruptions") or {}).get(
        "mean_corruption_error")
    fgsm = ((model.get("adversarial") or {}).get("fgsm") or {})
    return (None if corruption is None else f"{corruption:.2f}",
            _pct(fgsm["8"]) if "8" in fgsm else "-")


def experiment_rows(report, run):
    """Table rows of one driver report: every stage of report.md."""
    by_name = {f"student {i}": it for i, it in
               enumerate(report["iterations"], start=1)}
    rows = []
    for name, summary in report_lib.stage_rows(report):
        iteration = by_name.get(name, {})
        ratio = iteration.get("error_ratio")
        gap = iteration.get("gap_closed")
        corruption, fgsm = _robustness(report, name)
        rows.append([run, name, _pct(summary.get("top1")),
                     "-" if ratio is None else f"{ratio:.3f}",
                     "-" if gap is None else f"{gap:.0%}",
                     corruption or "-", fgsm, str(summary.get("steps"))])
    rows[-1].append(f"{report['wall_seconds'] / 60:.1f} min")
    return rows


def experiment_table(reports):
    """One table over several runs' reports ({run name: report})."""
    lines = ["| run | stage | top-1 | error / baseline | gap closed | "
             "corruption error | FGSM ε=8 | steps | wall |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run, report in reports.items():
        for row in experiment_rows(report, run):
            lines.append("| " + " | ".join(row + [""] * (9 - len(row)))
                         + " |")
    return "\n".join(lines)


def method_table(reports):
    """KD / MEAL V2 / MPL runs ({run: `scripts/run_method.py` report}):
    test top-1 of every model and the final model's error against the
    labels-only baseline of the same student (KD's `baseline`, MEAL V2's
    `student_init`; MPL's config has none)."""
    lines = ["| run | method | teachers | labels-only student | method's "
             "student | finetuned | error / labels-only | wall |",
             "|---|---|---|---|---|---|---|---|"]
    for run, report in reports.items():
        teachers = ", ".join(f"{name} {_pct(row.get('top1'))}"
                             for name, row in report["teachers"].items())
        baseline = report.get("baseline") or report.get("student_init")
        final = report["final"]["top1"]
        ratio = "-" if not baseline else \
            f"{(1 - final) / (1 - baseline['selected_top1']):.3f}"
        cells = [run, report["method"], teachers or "-",
                 _pct(baseline and baseline["selected_top1"]),
                 _pct(report["student"]["selected_top1"]),
                 _pct((report.get("finetune") or {}).get("selected_top1")),
                 ratio, f"{report['wall_seconds'] / 60:.0f} min"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ablation_table(results):
    """The ablation tables of several `ablation.json` files."""
    return "\n\n".join(report_lib.format_ablation_table(result["rows"])
                       for result in results.values())


def benchmark_table(results):
    """Every ratio of several `scripts/benchmark.py` outputs ({file:
    output}), with its goal and status, in the files' order."""
    lines = ["| file | ratio | measured | goal | status |",
             "|---|---|---|---|---|"]
    for name, result in results.items():
        for entry in result["summary"]:
            status = entry["status"]
            lines.append(
                f"| {name} | {entry['section']}: {entry['ratio']} | "
                f"{entry['value']} | {entry['goal'] or '-'} | "
                f"{'**miss**' if status == 'miss' else status} |")
    return "\n".join(lines)


# The measured columns a benchmark row may have, with their headings.
ROW_COLUMNS = (("images", "images"), ("images_per_s", "img/s"),
               ("cpu_ms_per_image", "CPU ms / image"),
               ("peak_rss_mib", "peak RSS MiB"))


def benchmark_rows(results):
    """Every measured row of several `scripts/benchmark.py` outputs, with
    the columns any of them has."""
    rows = [row for result in results.values()
            for section in result["sections"].values()
            for row in section["rows"]]
    columns = [(key, title) for key, title in ROW_COLUMNS
               if any(key in row for row in rows)]
    lines = ["| row | " + " | ".join(t for _, t in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        cells = [f"{row[key]:,}" if key in row else "-" for key, _ in columns]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


LAYOUT_WIDTH = 100


def _docstring_line(path):
    with open(path, encoding="utf-8") as handle:
        doc = ast.get_docstring(ast.parse(handle.read())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _layout_line(entry, doc):
    line = f"{entry:<40} {doc}".rstrip()
    if len(line) > LAYOUT_WIDTH:
        line = line[:LAYOUT_WIDTH - 1].rstrip() + "…"
    return line


def layout(directories, root):
    """A text tree of `directories` (relative to `root`): every package
    and module with the first line of its docstring."""
    lines = ["```text"]
    for top in directories.split():
        # Top-down and pruned in place: sorting the walk first would make
        # it visit __pycache__ before the filter below could drop it.
        for directory, subdirs, files in os.walk(os.path.join(root, top)):
            subdirs[:] = sorted(d for d in subdirs
                                if not d.startswith((".", "__")))
            rel = os.path.relpath(directory, root) + "/"
            init = os.path.join(directory, "__init__.py")
            doc = _docstring_line(init) if os.path.exists(init) else ""
            lines.append(_layout_line(rel, doc))
            indent = " " * (2 * rel.count("/"))
            for name in sorted(files):
                if name.endswith(".py") and name != "__init__.py":
                    entry = f"{indent}{name}"
                    doc = _docstring_line(os.path.join(directory, name))
                    lines.append(_layout_line(entry, doc))
    return "\n".join(lines + ["```"])


BUILDERS = {"experiment": experiment_table, "ablation": ablation_table,
            "method": method_table}


def _paths(paths, root):
    files = []
    for pattern in paths.split():
        matched = sorted(glob.glob(os.path.join(root, pattern)))
        if not matched:
            raise FileNotFoundError(
                f"README generated block names {pattern!r}: no such file "
                f"under {root}")
        files += matched
    return files


def _read_text(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _load(paths, root, by_file=False):
    """{name: parsed JSON}: the run directory under results/ (or, with
    `by_file`, the file's path under results/ without `.json`)."""
    results = os.path.join(root, "results")
    return {os.path.relpath(f[:-len(".json")] if by_file
                            else os.path.dirname(f), results):
            io_utils.read_json(f) for f in _paths(paths, root)}


def render(text, root):
    """The README text with every results block regenerated.

    Raises:
      ValueError: a block names an unknown kind.
      FileNotFoundError: a block names no existing file.
    """
    def replace(match):
        kind = match.group("kind")
        if kind == "layout":
            table = layout(match.group("paths"), root)
        elif kind == "include":
            table = "\n\n".join(
                _read_text(path).strip() for path in _paths(
                    match.group("paths"), root))
        elif kind in ("benchmark", "benchmark_rows"):
            build = benchmark_table if kind == "benchmark" \
                else benchmark_rows
            table = build(_load(match.group("paths"), root, by_file=True))
        elif kind in BUILDERS:
            table = BUILDERS[kind](_load(match.group("paths"), root))
        else:
            raise ValueError(f"unknown generated block kind {kind!r}; "
                             f"valid: layout, include, benchmark, "
                             f"benchmark_rows, "
                             f"{', '.join(BUILDERS)}")
        return match.group(1) + table + "\n" + match.group(5)

    return BLOCK.sub(replace, text)
