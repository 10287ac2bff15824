"""The experiment layer: in which order stages run and where on disk.

Only the driver (`loop.py`), `cli/`, `scripts/` and tests import it; the
library below
(`noisy_student_tf.data`, `labeling`, `training`, `robustness`, `configs`,
`models`, `export`) never does.

Modules:
    ablation        named variants of one experiment, run in sequence.
    report          report.json / report.md, the ablation table, plots.
    readme_tables   the README's result tables from files under results/.
"""
