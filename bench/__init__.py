"""Benchmarks: chatquota under gunicorn and wrk, against a bare-Flask baseline.

Run with `make bench`; `bench/run.py` is the entry point.
"""
