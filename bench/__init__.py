"""Benchmarks for pyorchestrate: each script prints its figures beside a baseline.

See ``bench/README.md``. Run one with ``python bench/bench_start.py`` (any working
directory) or all with ``python bench/run_all.py``; add ``--quick`` for a smoke run.
"""
