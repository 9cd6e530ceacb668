"""An extension that uses the machine's own torch (see examples/share_torch.toml)."""

import torch

import troupe


class TorchNorms(troupe.Extension):
    def initialize(self):
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def describe(self):
        return {"torch": torch.__version__, "device": self.device}

    def norms(self, batch):
        """Row norms of a 2-d array: arrives as a numpy view (or troupe.HostArray without
        numpy), leaves as a tensor that troupe turns back into an array."""
        rows = torch.from_dlpack(batch) if hasattr(batch, "__dlpack__") else torch.tensor(batch)
        return torch.linalg.vector_norm(rows.to(self.device).float(), dim=1).cpu()
