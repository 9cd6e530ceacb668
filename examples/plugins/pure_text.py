"""A pure-Python extension: no dependencies at all."""

import statistics
import sys

import troupe


class PureText(troupe.Extension):
    def initialize(self):
        self.calls = 0

    def describe(self):
        try:
            import numpy  # noqa: F401

            seen = "numpy importable (unexpected)"
        except ImportError:
            seen = "no numpy in this venv"
        return {"numpy": seen, "python": sys.version.split()[0]}

    def describe_values(self, values):
        self.calls += 1
        troupe.singleton("kv").incr("pure.visits")
        return (
            f"{len(values)} values, mean {statistics.fmean(values):.3f}, "
            f"median {statistics.median(values):.3f}"
        )

    def try_legacy(self):
        """pure is not granted `legacy`: the host refuses, and says so."""
        try:
            return troupe.extension("legacy").describe()
        except troupe.PermissionDeniedError as e:
            return f"refused: {e}"
