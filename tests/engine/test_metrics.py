import pytest
import torch

from danlu.engine import metrics
from danlu.engine.metrics import Meter, correct_topk


def _batches(n=150, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand((), generator=g) * 3, torch.randn(1 + i % 9, 7, generator=g),
             torch.randint(0, 7, (1 + i % 9,), generator=g)) for i in range(n)]


def test_sums_and_accuracies_are_the_hand_counted_ones():
    batches = _batches()
    meter = Meter((1, 5))
    for loss, logits, target in batches:
        meter.update(loss, logits, target)
    n = sum(len(t) for _, _, t in batches)
    loss_sum = 0.0
    for loss, _, target in batches:  # float64, in update order
        loss_sum += float(loss) * len(target)
    top1 = sum(int((logits.argmax(-1) == t).sum()) for _, logits, t in batches)
    top5 = sum(sum(int(y) in row for row, y in zip(logits.argsort(-1, descending=True)[:, :5].tolist(), t))
               for _, logits, t in batches)
    assert meter.reduced() == {"loss": loss_sum / n, "acc1": 100 * top1 / n, "acc5": 100 * top5 / n}
    assert meter.running() == (loss_sum / n, 100 * top1 / n)


def test_a_loaded_state_continues_the_sums_bit_for_bit_and_a_snapshot_stays_put(monkeypatch):
    monkeypatch.setattr(metrics, "COUNT_ELEMENTS", 100)  # hits counted in many groups
    batches = _batches()
    straight, first, second, again = Meter((1, 5)), Meter((1, 5)), Meter((1, 5)), Meter((1, 5))
    for loss, logits, target in batches:
        straight.update(loss, logits, target)
    for loss, logits, target in batches[:61]:
        first.update(loss, logits, target)
        again.update(loss, logits, target)
    frozen = first.snapshot()
    for loss, logits, target in batches[61:]:  # later updates leave the snapshot as it was
        first.update(loss, logits, target)
        assert first.waiting < 100  # logits wait to be counted up to COUNT_ELEMENTS, no more
    assert frozen.state() == again.state() and frozen.count == sum(len(t) for _, _, t in batches[:61])
    second.load(frozen.state())  # as a resumed run does
    for loss, logits, target in batches[61:]:
        second.update(loss, logits, target)
    assert second.reduced() == straight.reduced() == first.reduced()
    assert second.state() == straight.state()


def test_one_logit_is_binary_and_correct_topk_counts_per_k():
    logits, target = torch.tensor([[2.0], [-1.0], [0.5]]), torch.tensor([1, 1, 0])
    meter = Meter((1,))
    meter.update(torch.tensor(0.5), logits, target)
    assert meter.reduced()["acc1"] == pytest.approx(100 / 3)
    logits = torch.tensor([[0.1, 0.5, 0.2, 0.9], [0.3, 0.2, 0.1, 0.0]])
    assert correct_topk(logits, torch.tensor([2, 2]), ks=(1, 2, 3)).tolist() == [0, 0, 2]


def test_the_first_non_finite_loss_is_named_once_read():
    meter = Meter((1,))
    for i, loss in enumerate([1.0, 2.0, float("inf"), float("nan"), 3.0]):
        meter.update(torch.tensor(loss), torch.randn(2, 3), torch.tensor([0, 1]))
    assert meter.non_finite is None  # nothing read yet: no host synchronisation
    meter.running()
    assert meter.non_finite == (2, float("inf"))
