"""Every table, summary and plot of an experiment: `report.json` /
`report.md` with plots and the teacher-vs-students table printed at the
end of a run; the ablation's `ablation.json` / `ablation.md` /
`ablation.png` (one row per variant: its last student's top-1, error
relative to the labeled-only baseline, the change against `base`)."""

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from noisy_student_tf import io_utils  # noqa: E402
from noisy_student_tf.experiment import workdir as workdir_lib  # noqa: E402


def stage_summary(result):
    """A stage's row in report.json: test top-1/top-5, its model and
    steps, from the stage's `result.json`."""
    evaluation = result.get("eval", {})
    return {"top1": evaluation.get("top1"), "top5": evaluation.get("top5"),
            "model": result.get("model"), "steps": result.get("steps"),
            "train_seconds": result.get("train_seconds"),
            "model_path": result.get("model_path"),
            **({"from_file": True} if result.get("from_file") else {})}


def new_report(config, teacher_result):
    """The report of a run so far: the teacher, no iterations yet, class
    names and what the accuracies are measured on."""
    report = {"teacher": stage_summary(teacher_result), "iterations": []}
    if config.get("class_names"):
        report["class_names"] = list(config.class_names)
    if config.data.get("eval") and config.data.eval.get("note"):
        report["eval_data"] = config.data.eval.note
    return report


def iteration_row(result, labels, filtered, mode):
    """One iteration's entry: its student and its pseudo labels (`labels`
    and `filtered` are the labeling and filter summaries; empty online)."""
    return {
        "student": stage_summary(result),
        "num_pseudo_labeled": filtered.get("num_records"),
        "num_labeled_by_teacher": labels.get("num_records"),
        "skipped_corrupt": labels.get("skipped_corrupt"),
        "pseudo_label_accuracy": labels.get("accuracy_vs_true_labels"),
        "mode": mode,
    }


def provenance(config):
    """What a report committed under results/ must carry: its run's name,
    the code's commit and the resolved config."""
    return dict(name=config.get("name"), commit=io_utils.source_commit(),
                config=config.to_dict())


def finish_report(config, report, workdir):
    """Adds provenance and the gains, then writes the report."""
    report.update(provenance(config))
    add_gains(report)
    write_report(config, report, workdir)
    return report


def stage_rows(report):
    """(name, summary) of every model of a run, in report.md's order."""
    result = [("teacher", report["teacher"])]
    baseline = report.get("baseline")
    if baseline and baseline.get("same_as") != "teacher":
        result.append(("baseline", baseline))
    seen = [report["teacher"]]
    for index, iteration in enumerate(report["iterations"], start=1):
        own = iteration.get("baseline")
        if own and own not in seen:  # a larger student's own baseline
            result.append((f"baseline {index}", own))
            seen.append(own)
        result.append((f"student {index}", iteration["student"]))
    if report.get("finetune"):
        result.append(("finetuned", report["finetune"]))
    if report.get("ceiling"):
        result.append(("ceiling", report["ceiling"]))
    return result


def add_gains(report):
    """Adds each iteration's `error_ratio` (its error / its baseline's) and,
    with a ceiling stage, `gap_closed` = (student - baseline) / (ceiling -
    baseline) in top-1: the share of the labeled-only model's distance to
    the all-labels model that the unlabeled data made up."""
    # A teacher from a file is no labels-only baseline.
    fallback = {} if report["teacher"].get("from_file") else report["teacher"]
    default = (report.get("baseline") or fallback).get("top1")
    ceiling = (report.get("ceiling") or {}).get("top1")
    for iteration in report["iterations"]:
        # A student with a baseline of its own architecture is compared
        # with it (driver `student_baselines`).
        base = (iteration.get("baseline") or {}).get("top1", default)
        top1 = iteration["student"].get("top1")
        if top1 is None or base is None:
            continue
        if base < 1.0:
            iteration["error_ratio"] = (1.0 - top1) / (1.0 - base)
        if ceiling is not None and ceiling != base:
            iteration["gap_closed"] = (top1 - base) / (ceiling - base)
    return report


def format_table(report):
    """Markdown table: model, top-1, error, error vs baseline, gap closed
    (with a ceiling stage), steps."""
    baseline = report.get("baseline") or report["teacher"]
    base_error = 1.0 - baseline["top1"] if baseline.get("top1") else None
    gaps = {f"student {i}": it.get("gap_closed") for i, it in
            enumerate(report["iterations"], start=1)}
    ratios = {f"student {i}": it.get("error_ratio") for i, it in
              enumerate(report["iterations"], start=1)}
    lines = ["| stage | model | top-1 | error | error / baseline | "
             "gap closed | steps |", "|---|---|---|---|---|---|---|"]
    for name, row in stage_rows(report):
        top1 = row.get("top1")
        if top1 is None:
            lines.append(f"| {name} | {row.get('model')} | - | - | - | - "
                         "| - |")
            continue
        error = 1.0 - top1
        ratio = ratios.get(name)
        if ratio is None and base_error and not name.startswith("baseline "):
            ratio = error / base_error
        ratio = f"{ratio:.3f}" if ratio is not None else "-"
        gap = f"{gaps[name]:.0%}" if gaps.get(name) is not None else "-"
        lines.append(
            f"| {name} | {row.get('model')} | {top1 * 100:.2f}% | "
            f"{error * 100:.2f}% | {ratio} | {gap} | {row.get('steps')} |")
    return "\n".join(lines)


def plot_accuracy(report, path):
    """Bars for the teacher, baseline and students; the baseline and the
    all-labels ceiling as dashed lines, so the gap closed is visible."""
    shown = [(name, row) for name, row in stage_rows(report) if name != "ceiling"]
    names = [name for name, _ in shown]
    values = [100 * (row.get("top1") or 0) for _, row in shown]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(shown)), 3.5))
    bars = ax.bar(names, values, color=["#777777"] + ["#228833"] *
                  (len(shown) - 1))
    ax.bar_label(bars, fmt="%.2f")
    lines = [(report.get("baseline") or report["teacher"], "baseline",
              "#777777")]
    if report.get("ceiling"):
        lines.append((report["ceiling"], "ceiling (all labels)", "#aa3377"))
    for row, label, color in lines:
        if row.get("top1") is not None:
            ax.axhline(100 * row["top1"], ls="--", lw=1, color=color,
                       label=f"{label} {100 * row['top1']:.2f}")
            values.append(100 * row["top1"])
    ax.legend(fontsize=8, loc="lower right")
    low = min(values) if values else 0
    ax.set_ylim(max(0, low - 5), min(100, max(values + [0]) + 2))
    ax.set_ylabel("test top-1 (%)")
    ax.set_title("Baseline, noised students and ceiling")
    fig.tight_layout()
    io_utils.atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def plot_training_curves(stage_dirs, path):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, stage_dir in stage_dirs:
        history = os.path.join(stage_dir, "metrics.jsonl")
        if not os.path.exists(history):
            continue
        steps, losses = [], []
        with open(history) as handle:
            for line in handle:
                record = json.loads(line)
                if "loss" in record:
                    steps.append(record["step"])
                    losses.append(record["loss"])
        ax.plot(steps, losses, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    io_utils.atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def write_report(config, report, workdir):
    """Writes report.json, report.md and plots; prints the table."""
    io_utils.atomic_write_json(os.path.join(workdir, "report.json"), report)
    plot_accuracy(report, os.path.join(workdir, "accuracy.png"))
    stages = [("teacher", os.path.join(workdir, "teacher"))]
    stages += [(f"student {i}", os.path.join(workdir, f"iter{i}", "student"))
               for i in range(1, len(report["iterations"]) + 1)]
    for name in ("finetune", "ceiling"):
        if report.get(name):
            stages.append((name, os.path.join(workdir, name)))
    plot_training_curves(stages, os.path.join(workdir, "training_loss.png"))
    table = format_table(report)
    lines = [f"# Noisy Student report: {config.get('name', 'experiment')}",
             "", table, "",
             f"Wall time: {report['wall_seconds'] / 60:.1f} min. "
             f"Export: `{report.get('export_dir')}`.", "",
             "![accuracy](accuracy.png)", "",
             "![training loss](training_loss.png)", ""]
    for index, iteration in enumerate(report["iterations"], start=1):
        if iteration.get("num_pseudo_labeled") is None:
            continue
        accuracy = iteration.get("pseudo_label_accuracy")
        lines += [f"## Iteration {index} pseudo labels", "",
                  f"{iteration['num_pseudo_labeled']} records after "
                  "filtering and balancing" +
                  (f"; teacher accuracy on the unlabeled pool "
                   f"{accuracy * 100:.2f}%" if accuracy else "") + ".", "",
                  f"![confidence](iter{index}/filter/confidence_hist.png) "
                  f"![counts](iter{index}/filter/class_counts.png)", ""]
    if report.get("robustness"):
        from noisy_student_tf.robustness import model_suite
        lines += model_suite.report_lines(report["robustness"])
    io_utils.atomic_write_bytes(os.path.join(workdir, "report.md"),
                                "\n".join(lines).encode())
    print("\n" + table + "\n", flush=True)


# === Related methods (experiment/methods.py) ===


def write_method_report(report, workdir):
    """Writes a method experiment's report.json and prints its lines."""
    io_utils.atomic_write_json(os.path.join(workdir, "report.json"), report)
    for line in format_method_lines(report):
        workdir_lib.log(line)


def format_method_lines(report):
    """One line per model: test top-1 (final / validation-selected)."""
    lines = []
    for name, row in report["teachers"].items():
        lines.append(f"teacher {name}: test top-1 {_pct_text(row.get('top1'))}")
    for name in ("student_init", "baseline", "student", "finetune"):
        row = report.get(name)
        if not row:
            continue
        text = f"{name}: test top-1 {_pct_text(row.get('top1'))}"
        if row.get("best_validation"):
            best = row["best_validation"]
            text += (f", best validation {_pct_text(best['top1'])} at step "
                     f"{best['step']} -> test {_pct_text(row['selected_top1'])}")
        lines.append(text)
    return lines


def _pct_text(value):
    return "-" if value is None else f"{100 * value:.2f}%"


# === Ablation ===


ABLATION_PLOT = "ablation.png"


def _ablation_row(name, report, what):
    baseline = report.get("baseline") or report["teacher"]
    last = report["iterations"][-1]
    top1 = last["student"]["top1"]
    return {
        "variant": name,
        "what": what,
        "teacher_top1": report["teacher"]["top1"],
        "baseline_top1": baseline["top1"],
        "student_top1": [it["student"]["top1"] for it in report["iterations"]],
        "num_pseudo_labeled": [it.get("num_pseudo_labeled")
                               for it in report["iterations"]],
        "error_vs_baseline": (1 - top1) / max(1 - baseline["top1"], 1e-12),
        "steps": last["student"]["steps"],
    } | _last_student_robustness(report)


def _last_student_robustness(report):
    """The last student's corruption error and FGSM accuracy, if run."""
    models = (report.get("robustness") or {}).get("models") or {}
    student = models.get(f"student {len(report['iterations'])}")
    if not student:
        return {}
    fgsm = student["adversarial"]["fgsm"]
    epsilon = "8" if "8" in fgsm else max(fgsm, key=float)
    # mean_corruption_error is on the 0-100 scale (ImageNet-C's), the
    # accuracies are fractions.
    return {"corruption_error": student["corruptions"][
                "mean_corruption_error"],
            "fgsm_epsilon": epsilon, "fgsm_top1": fgsm[epsilon]}


def summarize_ablation(reports, descriptions=None):
    """Rows of every variant ({name: report}), with the change of top-1
    against `base`; `descriptions` says what each variant changes."""
    descriptions = descriptions or {}
    rows = [_ablation_row(name, report, descriptions.get(name, ""))
            for name, report in reports.items()]
    base = next((row for row in rows if row["variant"] == "base"), None)
    for row in rows:
        row["delta_vs_base"] = (row["student_top1"][-1]
                                - base["student_top1"][-1]) if base else None
    return rows


def format_ablation_table(rows):
    """Markdown table of the ablation rows (percentages)."""
    iterations = len(rows[0]["student_top1"]) if rows else 0
    heads = [f"student {i} top-1" for i in range(1, iterations + 1)]
    heads += ["error / baseline", "Δ top-1 vs base", "pseudo labels"]
    robust = rows and all("corruption_error" in row for row in rows)
    if robust:
        heads += ["corruption error (%)",
                  f"FGSM ε={rows[0]['fgsm_epsilon']} top-1"]
    lines = ["| variant | " + " | ".join(heads) + " |",
             "|---|" + "---|" * len(heads)]
    for row in rows:
        delta = row["delta_vs_base"]
        cells = [f"{t * 100:.2f}%" for t in row["student_top1"]]
        cells += [f"{row['error_vs_baseline']:.3f}",
                  "-" if delta is None else f"{delta * 100:+.2f}",
                  _or_dash(row["num_pseudo_labeled"][-1])]
        if robust:
            cells += [f"{row['corruption_error']:.2f}",
                      f"{row['fgsm_top1'] * 100:.2f}%"]
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_ablation(rows, path):
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(rows)), 3.5))
    names = [row["variant"] for row in rows]
    values = [100 * row["student_top1"][-1] for row in rows]
    bars = ax.bar(names, values, color="#228833")
    ax.bar_label(bars, fmt="%.2f")
    baseline = 100 * rows[0]["baseline_top1"]
    ax.axhline(baseline, color="#777777", linestyle="--",
               label=f"labeled-only baseline {baseline:.2f}%")
    ax.set_ylim(max(0, min(values + [baseline]) - 4),
                min(100, max(values + [baseline]) + 2))
    ax.set_ylabel("student test top-1 (%)")
    ax.set_title("Ablation")
    ax.legend(fontsize=8, loc="lower right")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    io_utils.atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def write_ablation(config, reports, workdir, descriptions=None):
    """Writes ablation.json/md/png, prints the table, returns the dict."""
    rows = summarize_ablation(reports, descriptions)
    first = next(iter(reports.values()))
    baseline = first.get("baseline") or first["teacher"]
    result = {"name": config.get("name"), "rows": rows,
              "teacher_top1": first["teacher"]["top1"],
              "baseline_top1": baseline["top1"]}
    io_utils.atomic_write_json(os.path.join(workdir, "ablation.json"),
                               result)
    plot_ablation(rows, os.path.join(workdir, ABLATION_PLOT))
    table = format_ablation_table(rows)
    lines = [f"# Ablation: {config.get('name', 'experiment')}", "",
             f"Teacher top-1 {result['teacher_top1'] * 100:.2f}%, "
             f"labeled-only baseline {result['baseline_top1'] * 100:.2f}%.",
             "", table, "", f"![ablation]({ABLATION_PLOT})", "",
             "Variants:", ""]
    lines += [f"- `{row['variant']}`: {row['what']}" for row in rows]
    io_utils.atomic_write_bytes(os.path.join(workdir, "ablation.md"),
                                ("\n".join(lines) + "\n").encode())
    print("\n" + table + "\n", flush=True)
    return result


def _or_dash(value):
    """A table cell: "-" for what a run has none of (e.g. the labels-only
    control's pseudo labels)."""
    return "-" if value is None else str(value)
