"""The related-method experiment runner (KD, MEAL V2, MPL): `runner.py`.

The methods themselves are objectives of the `Trainer`, in
`noisy_student_tf/training/objectives/`.
"""
