"""An extension that uses the machine's own torch (see examples/share_torch.toml)."""

import torch

import troupe


def as_tensor(batch):
    """``batch`` as a torch tensor, whichever form the host's array took here.

    - A ``troupe.CudaArray`` (the host's GPU memory) or a ``troupe.HostArray`` (a CPU array,
      in a venv without numpy) goes through DLPack: the GPU memory itself, or a private copy
      of the host's read-only shared memory.
    - With numpy installed, a CPU array arrives as a read-only numpy view of shared memory.
      numpy refuses to export a read-only array through DLPack to a torch that does not ask
      for DLPack 1.0 (``BufferError``), and ``torch.from_numpy`` warns that the tensor would
      be writable: ``torch.tensor`` copies it, quietly.
    """
    if isinstance(batch, torch.Tensor):
        return batch
    if hasattr(batch, "__cuda_array_interface__") or isinstance(batch, troupe.HostArray):
        return torch.from_dlpack(batch)
    return torch.tensor(batch)


class TorchNorms(troupe.Extension):
    def initialize(self):
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def describe(self):
        return {"torch": torch.__version__, "device": self.device}

    def norms(self, batch):
        """Row norms of a 2-d array; the result leaves as a tensor that troupe turns back
        into an array."""
        rows = as_tensor(batch)
        return torch.linalg.vector_norm(rows.to(self.device).float(), dim=1).cpu()
