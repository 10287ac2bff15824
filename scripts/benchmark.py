r"""Side-by-side speed and memory benchmarks, measured in one run.

Absolute numbers on shared machines are noisy; the ratios between rows
measured in the same run are what the benchmark reports. Candidates are
timed in interleaved rounds (each once per round, the order alternating)
and the median round is reported, so load changes hit every candidate.

Usage:
  python scripts/benchmark.py --quick --output=benchmark.json
  python scripts/benchmark.py --sections=pseudo_label,labeling_memory
  python scripts/benchmark.py --smoke   # seconds: plumbing, not numbers

Sections (`SECTIONS`): efficientnet_train (ours vs keras.applications B0,
and the Trainer loop vs the bare step), timm_train (vs timm on PyTorch),
training_modes (the Trainer loop per mixed precision x XLA mode, on the
GPU when there is one),
randaugment (vs keras-cv / keras, and vs the student's consumption),
pseudo_label (labeling vs teacher inference), labeling_memory (peak
RSS, 10x the images) and beam_label (labeling on Apache Beam vs the local
engine, `benchmarks/beam.py`). The run ends with every ratio against its goal
(`GOALS`).

Adding a section: write `bench_<name>(mode) -> dict` (mode "full",
"quick" or "smoke") returning `{"rows": [...], "ratios": {...}, "notes":
[...]}` (rows from `timing.time_images`/`time_steps` or dicts with at least
"name"), add it to `SECTIONS` and its goals to `GOALS`. Sections live in `scripts/benchmarks/`: timing helpers (`timing.py`),
training (`training.py`, `training_modes.py`), RandAugment (`augmentation.py`) and labeling
(`labeling.py`).
"""

import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# PyTorch's OpenMP threads otherwise spin at barriers; on a busy 2-core
# VM a descheduled partner made timm's B0 steps 3-30x slower and erratic.
# Read when torch loads libgomp; TensorFlow does not use OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import augmentation  # noqa: E402
from benchmarks import beam  # noqa: E402
from benchmarks import labeling  # noqa: E402
from benchmarks import timing  # noqa: E402
from benchmarks import training  # noqa: E402
from benchmarks import training_modes  # noqa: E402
from noisy_student_tf import io_utils  # noqa: E402

_QUICK = flags.DEFINE_bool(
    "quick", False, "Fewer images per measurement (whole run in minutes).")
_SMOKE = flags.DEFINE_bool(
    "smoke", False, "Tiny models and sizes, one round: checks that every "
    "section runs (seconds); its numbers mean nothing.")
_OUTPUT = flags.DEFINE_string(
    "output", "benchmark.json", "Where to write the JSON results.")
_SECTIONS = flags.DEFINE_list(
    "sections", [], "Comma list of sections to run; empty runs every "
    "section but the opt-in ones (training_modes, beam_label); `all` runs "
    "every section.")
_TRAINING_MODES = flags.DEFINE_string(
    "training_modes", "", "training_modes rows as precision:xla pairs, "
    "e.g. none:off,none:xla,bf16:off,fp16:xla; empty picks by device (all "
    "six on a GPU; none:off, none:xla, bf16:off on a CPU).")


SECTIONS = {
    "efficientnet_train": training.bench_efficientnet_train,
    "timm_train": training.bench_timm_train,
    "training_modes": training_modes.bench_training_modes,
    "randaugment": augmentation.bench_randaugment,
    "pseudo_label": labeling.bench_pseudo_label,
    "labeling_memory": labeling.bench_labeling_memory,
    "beam_label": beam.bench_beam_label,
}

# Run only when named (or with --sections=all): each adds minutes, and
# beam_label needs the `beam` extra. scripts/device_check.sh names
# training_modes.
OPT_IN = ("training_modes", "beam_label")

# Training candidates each section needs (all measured in one set of
# interleaved rounds).
_FRAMEWORKS = {
    "efficientnet_train": {"ours", "keras"},
    "timm_train": {"ours", "timm"},
    "randaugment": {"ours"},
}

# section -> ratio -> (comparison, goal); ratios not listed are reported
# without a goal.
GOALS = {
    "efficientnet_train": {
        "ours/keras.applications @32": (">=", 1.0),
        "ours/keras.applications @224": (">=", 1.0),
    },
    "timm_train": {
        "ours/timm @32": (">=", 1.0),
        "ours/timm @224": (">=", 1.0),
    },
    "randaugment": {
        "ours/keras-cv @32": (">=", 1.0),
        "ours/keras-cv @224": (">=", 1.0),
        "ours/keras @32": (">=", 1.0),
        "ours/keras @224": (">=", 1.0),
        "ours/student train @32": (">=", 3.0),
        "ours/student train @224": (">=", 3.0),
    },
    "pseudo_label": {
        f"{ratio}{suffix}": (">=", 0.9)
        for suffix, _, _ in labeling.TEACHERS
        for ratio in ("label shards/inference (steady)",
                      "generate_pseudo_labels/inference "
                      "(incl. load + trace)")
    },
    "labeling_memory": {
        "peak RSS 10x images/1x": ("<=", 1.1),
    },
    "beam_label": {
        "beam/local labeling": (">=", 0.8),
    },
}


def summarize(sections):
    """Every ratio with its goal and "pass"/"miss" ("-" without a goal,
    "n/a" when not measured)."""
    summary = []
    for name, result in sections.items():
        for key, value in result["ratios"].items():
            goal = GOALS.get(name, {}).get(key)
            status = "-"
            if goal and value is None:
                status = "n/a"
            elif goal:
                op, target = goal
                ok = value >= target if op == ">=" else value <= target
                status = "pass" if ok else "miss"
            summary.append(dict(
                section=name, ratio=key, value=value,
                goal=f"{goal[0]} {goal[1]}" if goal else None,
                status=status))
    return summary


def print_summary(summary):
    print("\n== summary ==")
    width = max([len(f"{s['section']}: {s['ratio']}") for s in summary]
                + [5])
    print(f"{'ratio':<{width}}  {'value':>8}  {'goal':>7}  status")
    for s in summary:
        label = f"{s['section']}: {s['ratio']}"
        print(f"{label:<{width}}  {timing.cell(s['value']):>8}  "
              f"{timing.cell(s['goal']):>7}  {s['status']}")


# === Main ===

def main(argv):
    del argv
    mode = "smoke" if _SMOKE.value else "quick" if _QUICK.value else "full"
    names = _SECTIONS.value or [n for n in SECTIONS if n not in OPT_IN]
    if names == ["all"]:
        names = list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise app.UsageError(
            f"Unknown sections {unknown}; known: {sorted(SECTIONS)}")
    if _TRAINING_MODES.value:
        try:
            training_modes.MODES = training_modes.parse_modes(
                _TRAINING_MODES.value)
        except ValueError as error:
            raise app.UsageError(str(error)) from error
    training.TRAIN_FRAMEWORKS.clear()
    training.TRAIN_FRAMEWORKS.update(*(_FRAMEWORKS.get(n, set()) for n in names))
    report = dict(
        machine=dict(platform=platform.platform(), cpus=os.cpu_count(),
                     tensorflow=tf.__version__, keras=keras.__version__,
                     python=platform.python_version()),
        mode=mode, quick=mode == "quick",
        # Which code wrote the numbers (results files are committed).
        commit=io_utils.source_commit(),
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        sections={})
    start_all = time.perf_counter()
    for name in names:
        start = time.perf_counter()
        result = SECTIONS[name](mode)
        result["wall_s"] = round(time.perf_counter() - start, 1)
        report["sections"][name] = result
        timing.print_section(name, result)
        print(f"({name}: {result['wall_s']} s)", flush=True)
    report["wall_s"] = round(time.perf_counter() - start_all, 1)
    report["summary"] = summarize(report["sections"])
    print_summary(report["summary"])
    # Atomic: an interrupted run never leaves a half-written report.
    tmp = f"{_OUTPUT.value}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, _OUTPUT.value)
    print(f"\nwrote {_OUTPUT.value} ({report['wall_s']} s in all)")


if __name__ == "__main__":
    app.run(main)

