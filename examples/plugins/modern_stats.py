"""An extension on numpy 2.x: uses APIs that only exist in numpy 2."""

import sys

import numpy as np

import troupe


class ModernStats(troupe.Extension):
    def describe(self):
        return {"numpy": np.__version__, "python": sys.version.split()[0]}

    def row_norms(self, matrix):
        """numpy.linalg.vecdot is new in numpy 2.0."""
        norms = np.sqrt(np.linalg.vecdot(matrix, matrix))
        troupe.singleton("kv").put("modern.row_norms", norms.tolist())
        return norms

    async def summary(self, values):
        """Asks the pure-Python extension, through the host, to describe the values."""
        text = await troupe.extension("pure").aio.describe_values(values.tolist())
        await troupe.singleton("kv").aio.put("modern.summary", text)
        return text
