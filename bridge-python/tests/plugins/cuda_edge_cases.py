"""CUDA edge cases for ``extension_cuda_edge_cases.rs`` (from the review of the CUDA IPC
code, issue 16): torch tensors at offsets, views of imports sent back, in-place writes the
host must see, DLPack-only objects, zero-size tensors, expandable segments, many tensors in
one reply, a child that dies while the host holds its tensor. Every method needs torch with
CUDA; ``library()`` says whether it is there."""

import os
import signal

import troupe

try:
    import torch

    _TORCH = torch.cuda.is_available()
except ImportError:
    _TORCH = False


def pattern(n, seed):
    """``(i * 7 + seed) % 251`` as a uint8 CUDA tensor of ``n`` elements."""
    return ((torch.arange(n, device="cuda", dtype=torch.int64) * 7 + seed) % 251).to(torch.uint8)


class DlpackOnly:
    """A CUDA tensor seen only through DLPack (no ``__cuda_array_interface__``)."""

    def __init__(self, tensor):
        self.tensor = tensor

    def __dlpack__(self, stream=None, **kwargs):
        return self.tensor.__dlpack__(stream=stream, **kwargs)

    def __dlpack_device__(self):
        return self.tensor.__dlpack_device__()


class CudaEdgeCases(troupe.Extension):
    def library(self):
        return "torch" if _TORCH else None

    def versions(self):
        return {"torch": torch.__version__, "cuda": torch.version.cuda} if _TORCH else {}

    def sliced(self, n, seed):
        """Elements ``[n, 2n)`` of a ``3n`` pattern: a view at byte offset ``n`` of its block."""
        big = pattern(3 * n, seed)
        return big[n : 2 * n]

    def where(self, array):
        """Where the host's array is, as this process numbers its devices (its
        ``CUDA_VISIBLE_DEVICES`` may differ from the host's), and the sum of its bytes as
        torch reads them through DLPack."""
        tensor = torch.from_dlpack(array)
        return {
            "device": array.device,
            "dlpack_device": array.__dlpack_device__()[1],
            "torch_device": tensor.device.index,
            "sum": int(tensor.to(torch.int64).sum()),
        }

    def view_back(self, array):
        """A torch view of the host's array, returned as a tensor (not as the CudaArray)."""
        return torch.as_tensor(array, device="cuda")

    def add_slowly(self, array, cycles, echo):
        """Adds 1 in place to the host's array after a GPU stall of ``cycles`` on torch's
        stream; returns the array itself when ``echo``, else None. Nothing here waits for the
        GPU: troupe must (before an echo goes back, before the argument's release)."""
        t = torch.as_tensor(array, device="cuda")
        torch.cuda._sleep(cycles)
        t.add_(1)
        return array if echo else None

    def dlpack_only(self, n, seed):
        return DlpackOnly(pattern(n, seed))

    def empty(self):
        return torch.empty(0, dtype=torch.uint8, device="cuda")

    def expandable(self, n, seed):
        """A tensor from an expandable segment (cuMemCreate, not cudaMalloc)."""
        torch.cuda.memory._set_allocator_settings("expandable_segments:True")
        return pattern(n, seed) + 0

    def many(self, count, n):
        """``count`` tensors of ``n`` bytes, tensor ``k`` of pattern seed ``k % 251``."""
        return [pattern(n, k % 251) for k in range(count)]

    def keep_one(self, n, seed):
        return pattern(n, seed)

    def stats(self):
        return dict(troupe.cuda_stats())

    def crash(self):
        os.kill(os.getpid(), signal.SIGKILL)
