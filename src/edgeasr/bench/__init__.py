"""The bench stage: accuracy, latency, throughput and real-time factor in one run, held against budgets.

``runner`` (one backend: on device or through Triton; closed and open loop), ``suite`` (fp32 and
int8, device and Triton, batching on and off side by side, starting its own server), ``report``
(tables, JSON, CSV, plots) and ``budgets`` (``bench/budgets.toml`` as a gate). ``cli`` owns
``edgeasr bench``. Imports export, serving and the runtime core.
"""
