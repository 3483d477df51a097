"""Loss and accuracy bookkeeping, summed on the training device so that updating it never waits
for the device; the sums are read (one host synchronisation) only when a figure is shown or saved,
and they reduce across processes exactly."""
import torch

from .distributed import all_reduce_sum


def correct_topk(logits, target, ks=(1,)):
    """Number of samples whose target is among the top-k logits, for each k, as a device tensor;
    one logit means binary."""
    if logits.shape[-1] == 1:
        hits = ((logits.squeeze(-1) > 0).long() == target.long()).sum()
        return hits.repeat(len(ks))
    top = logits.topk(max(ks), dim=-1).indices
    hits = top == target.unsqueeze(-1)
    return torch.stack([hits[:, :k].any(dim=-1).sum() for k in ks])


class Meter:
    """Running sums of loss x samples and of correct predictions at each k."""

    def __init__(self, ks=(1,)):
        self.ks = ks
        self.count, self.sums = 0, None  # sums: float64 device tensor [loss x n, correct@k...]

    def update(self, loss, logits, target):
        n = target.shape[0]
        batch = torch.cat([loss.detach().double().reshape(1) * n, correct_topk(logits.detach(), target, self.ks).double()])
        self.sums = batch if self.sums is None else self.sums + batch
        self.count += n

    def snapshot(self):
        """A copy that later updates do not change (no host synchronisation)."""
        copy = Meter(self.ks)
        copy.count, copy.sums = self.count, None if self.sums is None else self.sums.clone()
        return copy

    def _values(self):
        return self.sums.tolist() if self.sums is not None else [0.0] * (1 + len(self.ks))

    def state(self):
        loss_sum, *correct = self._values()
        return {"loss_sum": loss_sum, "count": self.count, "correct": [int(c) for c in correct]}

    def load(self, state):
        self.count = state["count"]
        self.sums = torch.tensor([state["loss_sum"], *state["correct"]], dtype=torch.float64)

    def running(self):
        """(mean loss, top-1 %) so far in this process: for the progress bar."""
        loss_sum, correct, *_ = self._values()
        return loss_sum / max(self.count, 1), 100.0 * correct / max(self.count, 1)

    def reduced(self, device=torch.device("cpu")):
        """{'loss', 'acc1', 'acc5', ...} over all processes (accuracies in percent)."""
        loss_sum, *correct = self._values()
        loss_sum, count, *correct = all_reduce_sum([loss_sum, self.count, *correct], device)
        out = {"loss": loss_sum / max(count, 1)}
        out.update({f"acc{k}": 100.0 * c / max(count, 1) for k, c in zip(self.ks, correct)})
        return out
