"""One call that runs every robustness evaluation and returns a report.

`run_robustness_suite` measures, on one labelled uint8 image set: clean
top-1, accuracy under the 15 corruptions per severity (generated on the fly
or taken from a released set such as CIFAR-10-C), flip probabilities on
generated perturbation sequences, and FGSM / PGD accuracy per epsilon. The
report is a plain JSON-serialisable dict; `plot_robustness` draws several
reports side by side (matplotlib object API on an Agg canvas, so the
caller's pyplot backend is never touched). Released corruptions (e.g.
`datasets.load_cifar10_c`) replace the generated ones when given.

`logits_fn` receives float32 pixels on the 0-255 scale (the adversarial
protocol) and must apply the model's normalisation itself.
"""

import os
from typing import Callable, Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from noisy_student_tf.robustness import adversarial
from noisy_student_tf.robustness import corruptions as corruptions_lib
from noisy_student_tf.robustness import frost as frost_lib
from noisy_student_tf.robustness import metrics
from noisy_student_tf.robustness import perturbations as perturbations_lib

LogitsFn = Callable[[tf.Tensor], tf.Tensor]


class _Predictor:
    """Batched top-1 predictions through one traced tf.function."""

    def __init__(self, logits_fn: LogitsFn, batch_size: int):
        self.batch_size = batch_size
        self._fn = tf.function(
            lambda x: tf.argmax(logits_fn(x), axis=-1),
            reduce_retracing=True, autograph=False)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = [self._fn(tf.cast(images[i:i + self.batch_size], tf.float32))
               .numpy() for i in range(0, len(images), self.batch_size)]
        return np.concatenate(out) if out else np.zeros([0], np.int64)


def _progbar(total: int, enabled: bool):
    return keras.utils.Progbar(total, unit_name="batch") if enabled else None


def _corruption_section(predict, images, labels, names, severities,
                        constants, seed, corrupted_data, clean_error,
                        progress) -> dict:
    bs = predict.batch_size
    n_batches = -(-len(images) // bs)
    bar = _progbar(len(names) * len(severities) * n_batches, progress)
    accuracy = {}
    for name in names:
        accuracy[name] = {}
        for s in severities:
            if corrupted_data is not None:
                data, data_labels = corrupted_data[name][s]
                preds = predict(np.asarray(data))
                hits = np.sum(preds == np.asarray(data_labels).reshape(-1))
                total = len(data_labels)
                if bar is not None:
                    bar.add(n_batches)
            else:
                hits, total = 0, len(images)
                for b in range(0, len(images), bs):
                    batch = corruptions_lib.corrupt(
                        images[b:b + bs], name, s, constants=constants,
                        seed=seed, start_index=b)
                    hits += np.sum(predict(batch) == labels[b:b + bs])
                    if bar is not None:
                        bar.add(1)
            accuracy[name][str(s)] = float(hits) / max(total, 1)
    errors = {n: [1.0 - a for a in accs.values()]
              for n, accs in accuracy.items()}
    section = {
        "accuracy": accuracy,
        "mean_accuracy_per_severity": {
            str(s): float(np.mean([accuracy[n][str(s)] for n in names]))
            for s in severities},
        # CIFAR-10-C style: 100 x mean error, no AlexNet baseline.
        "mean_corruption_error": metrics.unnormalized_mean_error(errors),
        "mce": None,
        "relative_mce": None,
    }
    # The AlexNet table only means something for ImageNet-C constants.
    complete = (set(names) >= set(corruptions_lib.CORRUPTIONS)
                and tuple(sorted(severities)) == corruptions_lib.SEVERITIES)
    if constants == "imagenet" and complete:
        by_severity = {n: [1.0 - accuracy[n][str(s)]
                           for s in corruptions_lib.SEVERITIES]
                       for n in corruptions_lib.CORRUPTIONS}
        section["mce"] = metrics.mce(by_severity)
        section["relative_mce"] = metrics.relative_mce(by_severity,
                                                       clean_error)
    return section


def _perturbation_section(predict, images, names, num_sequences,
                          num_frames, constants, seed, progress) -> dict:
    images = images[:num_sequences]
    chunk = max(1, predict.batch_size // num_frames)
    bar = _progbar(len(names) * -(-len(images) // chunk), progress)
    flips = {}
    for name in names:
        preds = []
        for b in range(0, len(images), chunk):
            seqs = perturbations_lib.make_sequences(
                images[b:b + chunk], name, num_frames=num_frames, seed=seed,
                constants=constants, start_index=b)
            n, f = seqs.shape[:2]
            preds.append(predict(seqs.reshape((n * f,) + seqs.shape[2:]))
                         .reshape(n, f))
            if bar is not None:
                bar.add(1)
        flips[name] = metrics.flip_probability(
            np.concatenate(preds),
            perturbations_lib.is_noise_perturbation(name))
    return {"flip_probability": flips,
            "mean_flip_probability": metrics.mean_flip_rate(flips),
            "num_sequences": int(len(images)), "num_frames": num_frames}


def run_robustness_suite(
        logits_fn: LogitsFn,
        images_uint8: np.ndarray,
        labels: np.ndarray,
        *,
        corruptions: Optional[Sequence[str]] = corruptions_lib.CORRUPTIONS,
        severities: Sequence[int] = corruptions_lib.SEVERITIES,
        constants: str = "cifar",
        corrupted_data: Optional[Mapping] = None,
        perturbations: Optional[Sequence[str]] = (
            perturbations_lib.PERTURBATIONS),
        num_perturbation_sequences: int = 256,
        num_frames: int = 10,
        epsilons: Optional[Sequence[float]] = (1, 2, 4, 8, 16),
        pgd_steps: int = 10,
        num_adversarial_examples: Optional[int] = None,
        batch_size: int = 256,
        seed: int = 0,
        progress: bool = True) -> dict:
    """Runs clean, corruption, perturbation and adversarial evaluations.

    Pass None or an empty sequence for `corruptions`, `perturbations` or
    `epsilons` to switch that part off; its report entry is then None.

    Args:
        logits_fn: float32 pixels on 0-255 [N, H, W, C] -> [N, K] logits.
        images_uint8: uint8 [N, H, W, C] clean images, C in {1, 3}.
        labels: [N] integer labels.
        corruptions: corruption names to evaluate.
        severities: severities to evaluate.
        constants: "cifar" or "imagenet" corruption / perturbation
            constants (with `corrupted_data`: which benchmark the data
            are); mCE and relative mCE vs AlexNet are reported only for
            "imagenet" with all 15 corruptions and 5 severities.
        corrupted_data: optional released data replacing the on-the-fly
            corruptions, as returned by `datasets.load_cifar10_c`.
        perturbations: perturbation names for flip probabilities.
        num_perturbation_sequences: how many images (the first ones) get a
            perturbation sequence.
        num_frames: frames per perturbation sequence.
        epsilons: FGSM / PGD budgets on the 0-255 scale.
        pgd_steps: PGD iterations.
        num_adversarial_examples: attack only the first this many images
            (None: all).
        batch_size: evaluation batch size.
        seed: seed of every random corruption, sequence and PGD start.
        progress: show progress bars.

    Returns:
        A JSON-serialisable dict with keys "num_examples", "settings",
        "clean", "corruptions", "perturbations", "adversarial".

    Raises:
        ValueError: on mismatched images and labels or a bad name.
    """
    images = np.asarray(images_uint8)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(
            labels):
        raise ValueError("need uint8 [N, H, W, C] images and N labels; got "
                         f"{images.dtype} {images.shape}, {labels.shape}")
    for name in corruptions or ():
        for s in severities:
            corruptions_lib.validate(name, s, constants)
    predict = _Predictor(logits_fn, batch_size)
    clean_acc = float(np.mean(predict(images) == labels))
    report = {
        "num_examples": int(len(images)),
        "settings": {"constants": constants, "seed": seed,
                     "severities": list(severities),
                     "pgd_steps": pgd_steps,
                     "released_corruptions": corrupted_data is not None,
                     # which frost layers a generated frost used
                     "frost": (frost_lib.describe()
                               if "frost" in (corruptions or ())
                               and corrupted_data is None else None)},
        "clean": {"top1": clean_acc, "error": 1.0 - clean_acc},
        "corruptions": None, "perturbations": None, "adversarial": None,
    }
    if corruptions:
        report["corruptions"] = _corruption_section(
            predict, images, labels, list(corruptions), list(severities),
            constants, seed, corrupted_data, 1.0 - clean_acc, progress)
    if perturbations:
        report["perturbations"] = _perturbation_section(
            predict, images, list(perturbations), num_perturbation_sequences,
            num_frames, constants, seed, progress)
    if epsilons:
        n_adv = len(images) if num_adversarial_examples is None else (
            num_adversarial_examples)
        data = (images[:n_adv], labels[:n_adv])  # cast per batch
        report["adversarial"] = {"num_examples": int(min(n_adv, len(images)))}
        for attack in ("fgsm", "pgd"):
            accs = adversarial.adversarial_accuracy(
                logits_fn, data, epsilons=list(epsilons), attack=attack,
                steps=pgd_steps, seed=seed, batch_size=batch_size,
                progress=progress)
            report["adversarial"][attack] = {
                f"{eps:g}": acc for eps, acc in accs.items()}
    return report


# === Plots ===


def _severity_curve(report: Mapping):
    section = report.get("corruptions")
    if not section:
        return None
    per_sev = section["mean_accuracy_per_severity"]
    # Numeric order: a report read back from sorted-key JSON is not.
    keys = sorted(per_sev, key=int)
    xs = [0] + [int(s) for s in keys]
    ys = [report["clean"]["top1"]] + [per_sev[s] for s in keys]
    return xs, [100 * y for y in ys]


def _epsilon_curve(report: Mapping, attack: str):
    section = report.get("adversarial")
    if not section or attack not in section:
        return None
    accs = section[attack]
    keys = sorted(accs, key=float)  # "16" sorts before "2" in JSON
    xs = [0.0] + [float(e) for e in keys]
    ys = [report["clean"]["top1"]] + [accs[e] for e in keys]
    return xs, [100 * y for y in ys]


def plot_robustness(reports: Mapping[str, Mapping], path: str) -> str:
    """Writes a PNG comparing several `run_robustness_suite` reports.

    Panels (each drawn only if some report has the data): top-1 vs
    corruption severity (mean over corruptions; severity 0 is clean), and
    top-1 vs epsilon for FGSM and PGD (epsilon 0 is clean).

    Args:
        reports: model name -> report, e.g. {"teacher": r0,
            "student_1": r1}; the order is the legend order.
        path: output PNG path; parent folders are created.

    Returns:
        The path written.

    Raises:
        ValueError: if no report has anything to plot.
    """
    panels = [
        ("Corruptions", "severity", _severity_curve),
        ("FGSM", "epsilon (0-255 scale)",
         lambda r: _epsilon_curve(r, "fgsm")),
        ("PGD", "epsilon (0-255 scale)",
         lambda r: _epsilon_curve(r, "pgd")),
    ]
    curves = []
    for title, xlabel, fn in panels:
        lines = {name: fn(r) for name, r in reports.items()}
        lines = {name: line for name, line in lines.items() if line}
        if lines:
            curves.append((title, xlabel, lines))
    if not curves:
        raise ValueError("no report has corruption or adversarial results")

    fig = Figure(figsize=(4.5 * len(curves), 3.8))
    FigureCanvasAgg(fig)
    for i, (title, xlabel, lines) in enumerate(curves):
        ax = fig.add_subplot(1, len(curves), i + 1)
        for name, (xs, ys) in lines.items():
            ax.plot(xs, ys, marker="o", label=name)
        if title != "Corruptions":
            # Epsilons are roughly doubling: 1, 2, 4, 8, 16.
            ax.set_xscale("symlog", linthresh=1.0)
        ticks = sorted({x for xs, _ in lines.values() for x in xs})
        ax.set_xticks(ticks)
        ax.set_xticklabels(["clean" if t == 0 else f"{t:g}" for t in ticks])
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path
