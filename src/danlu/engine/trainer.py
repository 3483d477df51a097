"""The training loop: fit / evaluate / predict, with progress, metrics, checkpoints and resume.

Read it top to bottom: `fit` runs epochs; an epoch is forward -> loss -> backward -> (clip) ->
optimizer step -> schedule step; then validation, a metrics row, and a checkpoint. Only rank 0
writes anything. The trainer knows nothing about particular models or data sets."""
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from . import checkpoint as ckpt
from .config import TrainConfig
from .distributed import is_distributed, is_main, rank, world_size
from .logger import MetricsLog
from .metrics import Meter
from .sampler import EpochSampler


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


def select_device(name="auto"):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' was asked for but CUDA is not available here; use --device cpu or auto")
    return device


def compute_loss(logits, target, label_smoothing=0.0):
    """Cross-entropy, or BCE-with-logits when the model has a single output (binary tasks)."""
    if logits.shape[-1] == 1:
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1).float(), target.float())
    return F.cross_entropy(logits.float(), target, label_smoothing=label_smoothing)


class Trainer:
    """Trains `model` on `train_set`, validating on `val_set` (both yield (input, target) pairs).

    `optimizer` and `scheduler` default to those the config names (`danlu.optim`); `run_dir` None
    means nothing is written. `model_info` is stored with every checkpoint so that `evaluate` and
    `predict` can rebuild the model from the weights file alone."""

    def __init__(self, model, train_set, val_set, config=None, run_dir=None, model_info=None,
                 optimizer=None, scheduler=None, device=None):
        from ..optim import create_optimizer, create_scheduler

        self.cfg = config or TrainConfig()
        self.device = device or select_device(self.cfg.device)
        self.model = model.to(self.device)
        if self.cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.train_model = self.model
        if is_distributed():
            self.train_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.run_dir = Path(run_dir) if run_dir else None
        if self.run_dir and is_main():
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.model_info = model_info or {}
        self.train_sampler = EpochSampler(len(train_set), self.cfg.seed, True, rank(), world_size())
        self.train_loader = self._loader(train_set, self.train_sampler)
        self.val_loader = self._loader(val_set, EpochSampler(len(val_set), shuffle=False, rank=rank(),
                                                             world_size=world_size(), pad=False)) if val_set else None
        self.optimizer = optimizer or create_optimizer(self.model, self.cfg.optimizer, lr=self.cfg.lr,
                                                       weight_decay=self.cfg.weight_decay, **self.cfg.optimizer_kwargs)
        self.scheduler = scheduler if optimizer else create_scheduler(
            self.optimizer, self.cfg.schedule, self.cfg.epochs, len(self.train_loader),
            self.cfg.warmup_epochs, **self.cfg.schedule_kwargs)
        self.history, self.start_epoch, self.start_step, self.partial = [], 0, 0, None
        self.best = -math.inf

    def _loader(self, dataset, sampler):
        return DataLoader(dataset, batch_size=self.cfg.batch_size, sampler=sampler, num_workers=self.cfg.workers,
                          pin_memory=self.device.type == "cuda", persistent_workers=False)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16)

    def _to_device(self, x, y):
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.cfg.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def _topk(self):
        """Top-5 accuracy too when the model has at least 5 classes."""
        return (1, 5) if getattr(self.model, "num_classes", 0) >= 5 else (1,)

    # ---- resume -------------------------------------------------------------------------------
    def resume(self, path):
        """Continue from a checkpoint (run dir, checkpoint dir or weights file), exactly where it stopped."""
        ckpt_dir = ckpt.resolve_checkpoint(path)
        self.model.load_state_dict(ckpt.load_weights(ckpt_dir))
        state = ckpt.load_training_state(ckpt_dir)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.start_epoch, self.start_step = state["epoch"], state["step"]
        self.history, self.best = list(state["history"]), state["best"]
        self.partial = state.get("partial")
        ckpt.set_rng_state(state["rng"])
        return ckpt_dir

    def _training_state(self, epoch, step, meter=None):
        return {"optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "epoch": epoch, "step": step, "history": self.history, "best": self.best,
                "partial": meter.state() if meter else None,
                "rng": ckpt.rng_state()}

    def save(self, name, epoch, step, meter=None, mark_last=True):
        if self.run_dir is None or not is_main():
            return None
        return ckpt.save_checkpoint(self.run_dir / "checkpoints", name, self.model, self.model_info,
                                    self._training_state(epoch, step, meter), mark_last)

    # ---- training -----------------------------------------------------------------------------
    def fit(self):
        """Train for `config.epochs` epochs (from where `resume` left off); returns the metrics history."""
        log = MetricsLog(self.run_dir, self.history) if self.run_dir and is_main() else None
        self._progress = (self.start_epoch, self.start_step, None)  # what an interrupt would save
        try:
            self._fit(log)
        except KeyboardInterrupt:
            epoch, step, meter = self._progress
            where = self.save("interrupted", epoch, step, meter)
            raise KeyboardInterrupt(f"interrupted at epoch {epoch + 1}, step {step}"
                                    + (f"; checkpoint written to {where}, continue with --resume {self.run_dir}"
                                       if where else "")) from None
        return self.history

    def _fit(self, log):
        for epoch in range(self.start_epoch, self.cfg.epochs):
            train_metrics, seconds, seen = self._train_epoch(epoch)
            row = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train_metrics.items()}}
            if self.val_loader is not None:
                row.update({f"val_{k}": v for k, v in self.evaluate().items()})
            row.update(lr=self.optimizer.param_groups[-1]["lr"], epoch_time_s=seconds, images_per_s=seen / seconds)
            if hasattr(self.optimizer, "metrics"):
                row.update(self.optimizer.metrics())
            if self.scheduler is not None and self.scheduler.interval == "epoch":
                if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    self.scheduler.step(row.get("val_loss", row["train_loss"]))
                else:
                    self.scheduler.step()
            self.history.append(row)
            if self.cfg.progress and is_main():
                tqdm.write(_summary(row, self.cfg.epochs))
                sys.stdout.flush()  # show progress in logs too, where stdout is block-buffered
            score = row.get("val_acc1", row["train_acc1"])
            if log:
                log.append(row)
            self.save(f"epoch_{epoch + 1:04d}", epoch + 1, 0)
            if score > self.best:
                self.best = score
                self.save("best", epoch + 1, 0, mark_last=False)
            if self.run_dir and is_main():
                ckpt.prune_checkpoints(self.run_dir / "checkpoints", self.cfg.keep_last)
            self.start_step, self.partial = 0, None
            self._progress = (epoch + 1, 0, None)

    def _train_epoch(self, epoch):
        self.train_model.train()
        if self.start_step == 0:
            # per-epoch seeding makes dropout and augmentation depend only on (seed, epoch, rank)
            torch.manual_seed(self.cfg.seed + 1_000_003 * epoch + rank())
        self.train_sampler.set_epoch(epoch, start=self.start_step * self.cfg.batch_size)
        meter = Meter(self._topk())
        if self.partial:
            meter.load(self.partial)
        step, seen, start = self.start_step, 0, time.perf_counter()
        bar = tqdm(total=self.start_step + len(self.train_loader), initial=self.start_step, leave=False,
                   desc=f"epoch {epoch + 1}/{self.cfg.epochs}", disable=not (self.cfg.progress and is_main()),
                   dynamic_ncols=True, mininterval=0.5)
        for x, y in self.train_loader:
            x, y = self._to_device(x, y)
            with self._autocast():
                logits = self.train_model(x)
            loss = compute_loss(logits, y, self.cfg.label_smoothing)
            if not torch.isfinite(loss):
                self._stop_non_finite(loss, epoch, step)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.clip_grad:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad)
            self.optimizer.step()
            if self.scheduler is not None and self.scheduler.interval == "step":
                self.scheduler.step()
            meter.update(loss.detach(), logits, y)
            step, seen = step + 1, seen + y.shape[0]
            self._progress = (epoch, step, meter)
            bar.update()
            bar.set_postfix(loss=f"{meter.loss_sum / meter.count:.4f}",
                            acc=f"{100 * meter.correct[0] / meter.count:.1f}",
                            img_s=f"{seen * world_size() / (time.perf_counter() - start):.0f}", refresh=False)
        bar.close()
        seconds = time.perf_counter() - start
        return meter.reduced(self.device), seconds, seen * world_size()

    def _stop_non_finite(self, loss, epoch, step):
        last = ckpt.resolve_checkpoint(self.run_dir) if self.run_dir and (self.run_dir / "checkpoints" / ckpt.POINTER).exists() else None
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint had been written yet"
        raise NonFiniteLossError(f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; training "
                                 f"stopped and {kept}: lower the learning rate (--lr) or clip gradients (--clip-grad)")

    # ---- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, loader=None, return_predictions=False):
        """{'loss', 'acc1'[, 'acc5']} over `loader` (default: the validation set), reduced over processes.

        With `return_predictions`, also (targets, predicted labels, probabilities) of this process."""
        loader = loader or self.val_loader
        self.model.eval()
        meter = Meter(self._topk())
        targets, probs = [], []
        for x, y in loader:
            x, y = self._to_device(x, y)
            with self._autocast():
                logits = self.model(x)
            meter.update(compute_loss(logits, y), logits, y)
            if return_predictions:
                targets.append(y.cpu())
                probs.append(probabilities(logits.float()).cpu())
        metrics = meter.reduced(self.device)
        if not return_predictions:
            return metrics
        probs = torch.cat(probs)
        return metrics, torch.cat(targets), predicted_labels(probs), probs

    @torch.no_grad()
    def predict(self, inputs):
        """(labels, probabilities) for a batch of inputs."""
        self.model.eval()
        with self._autocast():
            probs = probabilities(self.model(inputs.to(self.device)).float()).cpu()
        return predicted_labels(probs), probs


def _summary(row, epochs):
    parts = [f"epoch {row['epoch']}/{epochs}", f"train loss {row['train_loss']:.4f} acc {row['train_acc1']:.2f}%"]
    if "val_loss" in row:
        parts.append(f"val loss {row['val_loss']:.4f} acc {row['val_acc1']:.2f}%"
                     + (f" top-5 {row['val_acc5']:.2f}%" if "val_acc5" in row else ""))
    parts.append(f"{row['images_per_s']:.0f} img/s")
    return " | ".join(parts)


def probabilities(logits):
    """Class probabilities; a single logit is P(class 1) of a binary task, returned as two columns."""
    if logits.shape[-1] == 1:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=-1)
    return logits.softmax(dim=-1)


def predicted_labels(probs):
    return probs.argmax(dim=-1)
