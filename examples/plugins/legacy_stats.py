"""An extension pinned to numpy 1.26: matrix statistics with the 1.x API."""

import sys

import numpy as np

import troupe


class LegacyStats(troupe.Extension):
    def describe(self):
        return {"numpy": np.__version__, "python": sys.version.split()[0]}

    def determinant(self, matrix):
        """matrix: a 2-D float64 array from the host; stores the result in the kv singleton."""
        det = float(np.linalg.det(matrix))
        troupe.singleton("kv").put("legacy.det", det)
        return det

    def normalize(self, samples):
        """Returns the samples scaled to unit peak, as a new array."""
        peak = float(np.max(np.abs(samples))) or 1.0
        return (samples / peak).astype(np.float32)
