"""Frames and timing harnesses shared by `python -m fastfeed bench` and `benchmarks/`."""
