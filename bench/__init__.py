"""Benchmarks: one script per question, each writing ``bench/results/<name>.json``.

A package so its scripts share ``bench.common`` without path tricks: run them from the repository root
as modules, e.g. ``python -m bench.scale --help``. ``python -m bench.report`` writes docs/benchmarks.md.
"""
