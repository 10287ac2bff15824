"""The command-line programs: absl binaries over the library.

Each module's `run()` is a console script (setup.py `entry_points`) and
`scripts/<name>.py` is a thin wrapper that calls it from a checkout.
"""
