"""Input data for noisy-student-tf: sources, preprocessing ops, pipelines.

Submodules are imported explicitly by their users (for example
`from noisy_student_tf.data import preprocess`); this package file imports
nothing so that loading one submodule does not pull in the others.
"""
