"""The sub-benchmarks of experiments/bench.py, one module per kind."""
