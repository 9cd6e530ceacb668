"""A test extension for arrays of other libraries: objects that are not numpy arrays but
speak DLPack (as a torch CPU tensor does) or the CUDA array interface."""

import numpy as np

import troupe


class DlpackOnly:
    """Wraps a numpy array and exposes only DLPack, forwarding to numpy's own
    ``__dlpack__`` / ``__dlpack_device__`` (numpy >= 1.22): the protocol path a torch CPU
    tensor takes, without torch."""

    def __init__(self, array):
        self._array = array
        self.exports = 0

    def __dlpack__(self, *args, **kwargs):
        self.exports += 1
        return self._array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


class RequiresGrad:
    """Refuses DLPack as torch does for a tensor that requires grad."""

    def __dlpack__(self, *args, **kwargs):
        raise RuntimeError("Can't export tensors that require gradient, use tensor.detach()")

    def __dlpack_device__(self):
        return (1, 0)


class FakeCudaTensor:
    """Claims to be a CUDA tensor through the CUDA array interface."""

    __cuda_array_interface__ = {
        "shape": (4,),
        "typestr": "<f4",
        "data": (0x7F0000000000, False),
        "version": 3,
        "strides": None,
        "stream": None,
    }


class ForeignArrays(troupe.Extension):
    def wrapped(self, n):
        """``[DLPack wrapper of arange(n) as float32]`` and the wrapper, to count exports."""
        self.last = DlpackOnly(np.arange(n, dtype=np.float32))
        return self.last

    def exports(self):
        return self.last.exports

    def wrapped_2d(self):
        return {"grid": DlpackOnly(np.arange(6, dtype=np.int16).reshape(2, 3))}

    def wrapped_strided(self):
        """A non-contiguous view (every other element) through DLPack."""
        return DlpackOnly(np.arange(10, dtype=np.int64)[::2])

    def requires_grad(self):
        return RequiresGrad()

    def fake_cuda(self):
        return FakeCudaTensor()

    def echo(self, value):
        return value

    def cuda_stats(self):
        return dict(troupe.cuda_stats())
