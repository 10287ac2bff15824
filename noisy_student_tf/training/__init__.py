"""Training: losses, optimisers, schedules, EMA, the trainer and evaluation."""
