"""Plots of the pseudo-label filter: confidence histogram and per-class
counts before and after balancing."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from noisy_student_tf import io_utils  # noqa: E402


def plot_filter_stats(histogram, stats, output_dir, class_names=None):
    """Writes `confidence_hist.png` and `class_counts.png`; returns paths."""
    histogram = np.asarray(histogram)
    bins = np.arange(histogram.shape[1]) / 100.0
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(bins, histogram.sum(0), width=0.01, align="edge", color="#4477aa")
    ax.axvline(stats["min_threshold"], color="#cc3311", linestyle="--",
               label=f"min threshold {stats['min_threshold']}")
    ax.set_xlabel("teacher top-1 confidence")
    ax.set_ylabel("unlabeled images")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("Pseudo-label confidence")
    fig.tight_layout()
    hist_path = os.path.join(output_dir, "confidence_hist.png")
    io_utils.atomic_savefig(fig, hist_path, dpi=110)
    plt.close(fig)

    num_classes = len(stats["per_class_before"])
    names = class_names or [str(c) for c in range(num_classes)]
    x = np.arange(num_classes)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * num_classes), 3.5))
    ax.bar(x - 0.2, stats["per_class_before"], 0.4, label="predicted",
           color="#bbbbbb")
    ax.bar(x + 0.2, stats["per_class_after"], 0.4,
           label="after filter/balance", color="#228833")
    ax.axhline(stats["num_image_per_class"], color="#cc3311",
               linestyle="--", label="target per class")
    ax.set_xticks(x, names, rotation=45 if num_classes > 10 else 0,
                  fontsize=8)
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    ax.set_title("Pseudo labels per class")
    fig.tight_layout()
    counts_path = os.path.join(output_dir, "class_counts.png")
    io_utils.atomic_savefig(fig, counts_path, dpi=110)
    plt.close(fig)
    return [hist_path, counts_path]
