"""The ablation table: `ablation.json`, `ablation.md` and `ablation.png`.

One row per variant: its last student's test top-1, error relative to the
labeled-only baseline, the change against the `base` variant, and the
pseudo labels it trained on. Printed at the end of `scripts/ablate.py`.
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from noisy_student_tf import io_utils  # noqa: E402

PLOT_FILE = "ablation.png"


def _row(name, report):
    from noisy_student_tf import ablation

    baseline = report.get("baseline") or report["teacher"]
    last = report["iterations"][-1]
    top1 = last["student"]["top1"]
    return {
        "variant": name,
        "what": ablation.VARIANTS[name][2],
        "teacher_top1": report["teacher"]["top1"],
        "baseline_top1": baseline["top1"],
        "student_top1": [it["student"]["top1"] for it in report["iterations"]],
        "num_pseudo_labeled": [it.get("num_pseudo_labeled")
                               for it in report["iterations"]],
        "error_vs_baseline": (1 - top1) / max(1 - baseline["top1"], 1e-12),
        "steps": last["student"]["steps"],
    } | _robustness(report)


def _robustness(report):
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


def summarize(reports):
    """Rows of every variant, with the change of top-1 against `base`."""
    rows = [_row(name, report) for name, report in reports.items()]
    base = next((row for row in rows if row["variant"] == "base"), None)
    for row in rows:
        row["delta_vs_base"] = (row["student_top1"][-1]
                                - base["student_top1"][-1]) if base else None
    return rows


def format_table(rows):
    """Markdown table of the rows (percentages)."""
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
                  str(row["num_pseudo_labeled"][-1])]
        if robust:
            cells += [f"{row['corruption_error']:.2f}",
                      f"{row['fgsm_top1'] * 100:.2f}%"]
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows, path):
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


def write(config, reports, workdir):
    """Writes the three files, prints the table, returns the dict."""
    rows = summarize(reports)
    first = next(iter(reports.values()))
    baseline = first.get("baseline") or first["teacher"]
    result = {"name": config.get("name"), "rows": rows,
              "teacher_top1": first["teacher"]["top1"],
              "baseline_top1": baseline["top1"]}
    io_utils.atomic_write_json(os.path.join(workdir, "ablation.json"),
                               result)
    plot(rows, os.path.join(workdir, PLOT_FILE))
    table = format_table(rows)
    lines = [f"# Ablation: {config.get('name', 'experiment')}", "",
             f"Teacher top-1 {result['teacher_top1'] * 100:.2f}%, "
             f"labeled-only baseline {result['baseline_top1'] * 100:.2f}%.",
             "", table, "", f"![ablation]({PLOT_FILE})", "",
             "Variants:", ""]
    lines += [f"- `{row['variant']}`: {row['what']}" for row in rows]
    io_utils.atomic_write_bytes(os.path.join(workdir, "ablation.md"),
                                ("\n".join(lines) + "\n").encode())
    print("\n" + table + "\n", flush=True)
    return result
