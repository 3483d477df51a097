"""Loss and accuracy bookkeeping, summed so that it can be reduced across processes exactly."""
import torch

from .distributed import all_reduce_sum


def correct_topk(logits, target, ks=(1,)):
    """Number of samples whose target is among the top-k logits, for each k; one logit means binary."""
    if logits.shape[-1] == 1:
        return [int(((logits.squeeze(-1) > 0).long() == target.long()).sum())] * len(ks)
    top = logits.topk(max(ks), dim=-1).indices
    hits = top == target.unsqueeze(-1)
    return [int(hits[:, :k].any(dim=-1).sum()) for k in ks]


class Meter:
    """Running sums of loss x samples and of correct predictions at each k."""

    def __init__(self, ks=(1,)):
        self.ks = ks
        self.loss_sum, self.count, self.correct = 0.0, 0, [0] * len(ks)

    def update(self, loss, logits, target):
        n = target.shape[0]
        self.loss_sum += float(loss) * n
        self.count += n
        self.correct = [c + h for c, h in zip(self.correct, correct_topk(logits.detach(), target, self.ks))]

    def state(self):
        return {"loss_sum": self.loss_sum, "count": self.count, "correct": list(self.correct)}

    def load(self, state):
        self.loss_sum, self.count, self.correct = state["loss_sum"], state["count"], list(state["correct"])

    def reduced(self, device=torch.device("cpu")):
        """{'loss', 'acc1', 'acc5', ...} over all processes (accuracies in percent)."""
        loss_sum, count, *correct = all_reduce_sum([self.loss_sum, self.count, *self.correct], device)
        out = {"loss": loss_sum / max(count, 1)}
        out.update({f"acc{k}": 100.0 * c / max(count, 1) for k, c in zip(self.ks, correct)})
        return out
