"""A test extension for the shared-memory pool: arrays made in place, echoed, kept, freed."""

import gc

import numpy as np

import troupe


class PoolArrays(troupe.Extension):
    def echo(self, array):
        """Returns the array it got: a view of the host's slot, sent back as that slot."""
        return array

    def fresh(self, n):
        """A pool array filled here, and where it lies: ``[array, region, offset]``."""
        array = troupe.empty(n, np.uint8)
        array[:] = np.arange(n, dtype=np.uint64).astype(np.uint8)
        region, offset, local = troupe.slot_of(array)
        assert local
        self.sent = array
        return [array, region, offset]

    def sent_writeable(self):
        return bool(self.sent.flags.writeable)

    def where(self, array):
        """``[region, offset, local, checksum]`` of a received array: where it lies here."""
        region, offset, local = troupe.slot_of(array)
        return [region, offset, local, int(array.sum(dtype=np.uint64))]

    def keep(self, array):
        """Keeps a view of a received array past the call."""
        self.kept = array[1:]
        return troupe.slot_of(array)[2]

    def kept_sum(self):
        return int(self.kept.sum(dtype=np.uint64))

    def kept_writeable(self):
        return bool(self.kept.flags.writeable)

    def forget(self):
        del self.kept
        gc.collect()
        return None

    def stats(self):
        return dict(troupe.pool_stats())
