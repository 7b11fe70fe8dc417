"""Benchmarks of billing-digest (not tests): ``python -m bench.run --scale S|M|L [--only ...]``."""
