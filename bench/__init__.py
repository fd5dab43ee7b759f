"""Benchmarks: they print figures beside a baseline; not part of the pass/fail suite."""
