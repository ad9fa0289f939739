"""The benchmark suite: `make bench` (see README "Performance" and bench/__main__.py)."""
