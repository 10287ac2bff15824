"""The experiment layer: in which order stages run and where on disk.

Only `cli/`, `scripts/` and tests import it; the library below
(`noisy_student_tf.data`, `labeling`, `training`, `robustness`, `configs`,
`models`, `export`) never does.

Modules:
    noisy_student   run(): Algorithm 1 of the paper, and nothing else.
    stages          one function per stage (train, label, filter, student,
                    baselines, export, robustness), each resumable.
    stage_configs   the resolved trainer config of every stage.
    teacher_file    the teacher/ stage for a given model file (no training).
    workdir         stage paths, done markers, the saved config, the log.
    ablation        named variants of one experiment, run in sequence.
    report          report.json / report.md, the ablation table, plots.
    readme_tables   the README's result tables from files under results/.
"""
