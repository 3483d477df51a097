"""The training loss and the output conventions shared by training, evaluation and prediction.

One rule is written here once: a model with a single output is a binary task (BCE-with-logits,
P(class 1) = sigmoid); otherwise the outputs are class logits (cross-entropy, softmax). Targets are
class indices, or soft targets (N, classes) from Mixup / CutMix with label smoothing folded in."""
import torch
import torch.nn.functional as F


def compute_loss(logits, target, label_smoothing=0.0):
    """Cross-entropy on class indices or soft targets, or BCE-with-logits for a single output."""
    if logits.shape[-1] == 1:
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1).float(), target.float())
    if target.is_floating_point():  # soft targets: their smoothing is already folded in
        return torch.sum(-target * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()
    return F.cross_entropy(logits.float(), target, label_smoothing=label_smoothing)


def probabilities(logits):
    """Class probabilities; a single logit is P(class 1) of a binary task, returned as two columns."""
    if logits.shape[-1] == 1:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=-1)
    return logits.softmax(dim=-1)


def predicted_labels(probs):
    return probs.argmax(dim=-1)
