"""The related-method experiment runner (`runner.py`). The methods
themselves are objectives of the `Trainer`, in
`noisy_student_tf/training/objectives/`."""
