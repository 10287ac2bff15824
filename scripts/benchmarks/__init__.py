"""Sections of scripts/benchmark.py (importable when scripts/ is on the
path, as it is for `python scripts/benchmark.py`)."""
