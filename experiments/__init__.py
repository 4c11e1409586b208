"""gradlab experiments: one module per seed notebook, each a reproducible, verified, plotted run.

Run one with ``gradlab run <name> [--quick] [--out results]``; list them with
``gradlab run --list``. Each module exposes ``run(quick: bool, out_dir) -> dict`` (the metrics
it writes to ``<out>/<name>/metrics.json``) and uses only gradlab's public API.

The experiments verify hand gradients, closed forms and optimizers against each other at
float64 tolerances (1e-8 to 1e-12), so importing this package turns on jax's float64 mode
(``jax_enable_x64``), as gradlab's test suite does.
"""

import jax

jax.config.update("jax_enable_x64", True)
