"""Benchmarks and comparison harnesses: the standard dataset, real Prometheus, storage size."""
