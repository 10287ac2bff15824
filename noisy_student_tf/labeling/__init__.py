"""Pseudo-labeling (teacher predictions) and filtering / class balancing."""
