"""The cifar10_fast recipe trains as airbench94's own loop does: the same init and augmented batches, fed to a
transcription of airbench94's training (torch.optim.SGD on the summed loss with its two parameter groups,
LambdaLR, its LookaheadState, the whitening bias frozen after 3 epochs), end on the same weights.

At 1/100 of the recipe's lr (the recipe's lr, on 32-image batches, makes the first steps chaotic enough that
float rounding alone grows ~30x a step); 4 epochs of 4 steps cover warm-up, decay, three lookahead updates,
the final copy and the frozen bias."""
import copy
import math

import torch
from image_tree import write_image_tree
from torch import nn

from danlu.engine import build_trainer
from danlu.engine.config import resolve_config

SCALE = 0.01


def _recorded_run(tmp_path):
    """Our run of the recipe, with its initial weights (after the whitening init) and every training batch."""
    data = write_image_tree(tmp_path / "data", classes=4, train=32, val=2, sizes=(32, 33))
    cfg = resolve_config(recipe="cifar10_fast", dataset="image-folder", data_dir=str(data), epochs=4,
                         batch_size=32, lr=1.5 * SCALE, warmup_lr=0.3 * SCALE, min_lr=0.105 * SCALE, warmup_epochs=1,
                         bf16=False, channels_last=False, tta="none", progress=False, out=str(tmp_path / "runs"))
    trainer = build_trainer(cfg)
    init, batches = {}, []
    init_from_data = trainer._init_from_data

    def recorded_init():
        init_from_data()
        init.update(copy.deepcopy(trainer.model.state_dict()))

    trainer._init_from_data = recorded_init
    batch = trainer.batch

    class Recorded:
        def __getattr__(self, name):
            return getattr(batch, name)

        def __call__(self, x, y):
            out = batch(x, y)
            batches.append((out[0].clone(), out[1].clone()))
            return out

    trainer.batch = Recorded()
    trainer.fit()
    return trainer, init, batches


def _airbench_loop(model, batches, epochs):
    """airbench94.py's main loop (legacy/airbench94.py), on the given batches."""
    momentum, batch_size, total = 0.85, len(batches[0][1]), len(batches)
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    lr = 11.5 / kilostep_scale * SCALE
    # airbench's decay per step, lr x weight_decay, is fixed (decoupled from lr); the recipe's, as torch's
    # weight_decay, is proportional to the lr: at 1/100 of the lr, 1/100 of the decay
    wd = 0.0153 * 1024 / kilostep_scale * SCALE
    lr_biases = lr * 64.0
    norm_biases = [p for k, p in model.named_parameters() if "norm" in k and p.requires_grad]
    other = [p for k, p in model.named_parameters() if "norm" not in k and (p.requires_grad or k == "whiten.bias")]
    optimizer = torch.optim.SGD([dict(params=norm_biases, lr=lr_biases, weight_decay=wd / lr_biases),
                                 dict(params=other, lr=lr, weight_decay=wd / lr)], momentum=momentum, nesterov=True)
    steps_per_epoch = total // epochs
    warmup = steps_per_epoch  # the run's warm-up of one epoch, in danlu's form: it reaches 1 at step `warmup`

    def get_lr(t):
        if t < warmup:
            return 0.2 + 0.8 * (t + 1) / (warmup + 1)
        return 1.0 - 0.93 * (t - warmup) / (total - warmup)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, get_lr)
    alpha_schedule = 0.95**5 * (torch.arange(total + 1) / total) ** 3
    net_ema = {k: v.clone() for k, v in model.state_dict().items()}

    def lookahead(decay):
        for ema_param, net_param in zip(net_ema.values(), model.state_dict().values()):
            if net_param.dtype in (torch.half, torch.float):
                ema_param.lerp_(net_param, 1 - decay)
                net_param.copy_(ema_param)

    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.2, reduction="none")
    step = 0
    for epoch in range(epochs):
        model.whiten.bias.requires_grad = epoch < 3
        model.train()
        for _ in range(steps_per_epoch):
            inputs, labels = batches[step]
            # airbench sums the loss over its 1024 images; scaled to this batch, the step is the same
            loss = loss_fn(model(inputs), labels).sum() * (1024 / batch_size)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step % 5 == 0:
                lookahead(alpha_schedule[step].item())
            if step >= total:
                lookahead(1.0)
    return model


def test_cifar10_fast_trains_as_airbench94s_loop(tmp_path):
    trainer, init, batches = _recorded_run(tmp_path)
    norm_group, other_group = trainer.optimizer.param_groups
    assert len(batches) == 16 and math.isclose(norm_group["lr"] / other_group["lr"], 64.0)
    reference = copy.deepcopy(trainer.model)
    reference.load_state_dict(init)
    _airbench_loop(reference, batches, epochs=4)
    ours = trainer.model.state_dict()
    for k, v in reference.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(ours[k], v, rtol=1e-4, atol=1e-4 * v.abs().max().item(), msg=k)
    assert not torch.equal(ours["whiten.bias"], init["whiten.bias"])


def test_whitening_init_samples_every_class(tmp_path):
    """An image folder is stored class by class: the whitening init must sample the whole set, not its first
    images (all of one class)."""
    data = write_image_tree(tmp_path / "data", classes=3, train=32, val=2, sizes=(32, 33))
    cfg = resolve_config(recipe="cifar10_fast", dataset="image-folder", data_dir=str(data), epochs=2, batch_size=32,
                         bf16=False, channels_last=False, progress=False, out=str(tmp_path / "runs"))
    trainer = build_trainer(cfg)
    seen = []
    trainer.model.init_from_data = seen.append
    trainer._init_from_data(count=12)
    loader = trainer.train_loader
    every = trainer.batch.normalize(loader.images).flatten(1)
    _, which = (seen[0].flatten(1)[:, None] == every[None]).all(-1).nonzero(as_tuple=True)
    assert len(which) == 12 and set(loader.labels[which].tolist()) == {0, 1, 2}
