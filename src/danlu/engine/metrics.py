"""Loss and accuracy bookkeeping that never waits for the device while updating: the sums are read
(one host synchronisation) only when a figure is shown or saved, and they reduce across processes
exactly."""
import copy
import math

import torch

from .distributed import all_reduce_sum


def top_predictions(logits, k):
    """(N, k) class indices of the k largest logits; one logit means binary: (N, 1) predicted labels."""
    if logits.shape[-1] == 1:
        return (logits > 0).long()
    return logits.topk(k, dim=-1).indices


def rank_hits(predictions, target):
    """How many samples have their target at each rank of `predictions` (top-k indices are distinct, so
    the first k of these add up to the top-k hits)."""
    return (predictions == target.view(-1, 1)).sum(0)


def correct_topk(logits, target, ks=(1,)):
    """Number of samples whose target is among the top-k logits, for each k, as a device tensor."""
    hits = rank_hits(top_predictions(logits, max(ks)), target).cumsum(0)
    return hits[[min(k, len(hits)) - 1 for k in ks]]


COUNT_ELEMENTS = 2**22  # waiting logits (16 MB of float32) whose hits are counted in one go


class Meter:
    """Running sums of loss x samples and of hits at each rank of the top-k, with no device work per
    update: the losses and logits are kept (the logits with their targets) until a figure is read, when
    the losses are summed on the host in update order in float64, so that a sum does not depend on when
    it was read, and the hits are counted on the device in one go (also whenever COUNT_ELEMENTS logits
    wait: integers, exact in any grouping). `non_finite` is the first update, counted from the meter's
    start, whose loss was NaN or infinite, and that loss, once read."""

    def __init__(self, ks=(1,)):
        self.ks = ks
        self.count, self.updates, self.loss_sum, self.non_finite = 0, 0, 0.0, None
        self.loaded, self.hits = [0] * max(ks), None  # hits per rank: of a loaded state (host), since (device)
        self.losses, self.logits = [], []  # (loss, samples) not summed yet; (logits, targets) not counted yet
        self.waiting = 0  # elements of those logits

    def update(self, loss, logits, target):
        self.losses.append((loss.detach(), target.shape[0]))
        self.logits.append((logits.detach(), target))
        self.count, self.waiting = self.count + target.shape[0], self.waiting + logits.numel()
        if self.waiting >= COUNT_ELEMENTS:
            self._count()

    def snapshot(self):
        """A copy that later updates do not change (no host synchronisation, no device op)."""
        frozen = copy.copy(self)
        frozen.losses, frozen.logits = self.losses[:], self.logits[:]
        return frozen

    def _count(self):
        if self.logits:
            logits, targets = zip(*self.logits)
            hits = rank_hits(top_predictions(torch.cat(logits), max(self.ks)), torch.cat(targets))
            self.hits, self.logits, self.waiting = hits if self.hits is None else self.hits + hits, [], 0

    def _values(self):
        """(loss sum, correct at each k) on the host, with one host synchronisation."""
        self._count()
        losses = [loss for loss, _ in self.losses]
        parts = ([torch.stack(losses).double()] if losses else []) + ([self.hits.double()] if self.hits is not None else [])
        values = torch.cat(parts).tolist() if parts else []
        for (_, samples), value in zip(self.losses, values):
            if self.non_finite is None and not math.isfinite(value):
                self.non_finite = (self.updates, value)
            self.loss_sum, self.updates = self.loss_sum + value * samples, self.updates + 1
        counted = values[len(losses):] or [0] * len(self.loaded)
        self.losses, hits = [], [a + int(b) for a, b in zip(self.loaded, counted)]
        return self.loss_sum, [sum(hits[:k]) for k in self.ks]

    def state(self):
        loss_sum, correct = self._values()
        return {"loss_sum": loss_sum, "count": self.count, "correct": correct}

    def load(self, state):
        """Continue from `state` (of an interrupted epoch): hits per rank that add up to its counts."""
        correct, self.loaded = state["correct"], [0] * max(self.ks)
        for i, k in enumerate(self.ks):
            self.loaded[k - 1] = correct[i] - (correct[i - 1] if i else 0)
        self.count, self.loss_sum, self.hits, self.losses, self.logits = state["count"], state["loss_sum"], None, [], []

    def running(self):
        """(mean loss, top-1 %) so far in this process: for the progress bar."""
        loss_sum, (correct, *_) = self._values()
        return loss_sum / max(self.count, 1), 100.0 * correct / max(self.count, 1)

    def reduced(self, device=torch.device("cpu")):
        """{'loss', 'acc1', 'acc5', ...} over all processes (accuracies in percent)."""
        loss_sum, correct = self._values()
        loss_sum, count, *correct = all_reduce_sum([loss_sum, self.count, *correct], device)
        out = {"loss": loss_sum / max(count, 1)}
        out.update({f"acc{k}": 100.0 * c / max(count, 1) for k, c in zip(self.ks, correct)})
        return out
