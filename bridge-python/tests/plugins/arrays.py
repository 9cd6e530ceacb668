"""A test extension for numpy arrays: versions, views, big arrays through shared memory."""

import numpy as np

import troupe


class Arrays(troupe.Extension):
    def version(self):
        return np.__version__

    def describe(self, array):
        return {
            "dtype": str(array.dtype),
            "shape": list(array.shape),
            "writeable": bool(array.flags.writeable),
            "owns_data": bool(array.flags.owndata),
            "sum": float(array.sum(dtype=np.float64)),
        }

    def scale(self, array, factor):
        return (array * factor).astype(array.dtype)

    def keep(self, array):
        """Keeps a view of a received array past the call."""
        self.kept = array
        return None

    def kept_sum(self):
        return float(self.kept.sum(dtype=np.float64))

    def ramp(self, n):
        return np.arange(n, dtype=np.float32)

    def matrix(self):
        return np.arange(12, dtype=np.int16).reshape(3, 4)

    def mean(self, values):
        return float(np.mean(values))

    def of_dtype(self, name):
        """Four elements of numpy dtype `name` (e.g. ">i4" for big-endian)."""
        return np.arange(4).astype(name)
