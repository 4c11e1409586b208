"""gradlab experiments: one module per seed notebook, each a reproducible, verified, plotted run.

Run one with ``gradlab run <name> [--quick] [--out results]``; list them with
``gradlab run --list``.
Each module exposes ``run(quick: bool, out_dir) -> dict`` (the metrics it writes to
``<out>/<name>/metrics.json``) and uses only gradlab's public API (``import gradlab``).
"""
