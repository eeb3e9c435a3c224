"""Benchmarks that print their figures: ``python -m bench [names…] [-- args…]``.

Every module here (except ``common``) is a benchmark, runnable alone as
``python -m bench.<name> [args]``. The runner (``bench/__main__.py``) runs each
in its own process (each sets up Django for its own database), forwards the
arguments after ``--``, prints one table of the figures the modules report
through ``bench.common.report`` and writes them to ``bench/results/latest.json``.
"""
