"""The training loop: fit / evaluate / predict, with progress, metrics, checkpoints and resume.

Read it top to bottom: `fit` runs epochs; an epoch is batch transform (normalise, erase, mix) ->
forward -> loss -> backward, and every `accum_steps` batches (clip) -> optimizer step -> EMA update ->
schedule step; then validation (of the EMA weights too), a metrics row, and a checkpoint (every
`checkpoint_interval` epochs, the last and the best always; the curves at the end). Only rank 0
writes anything. The inner loop never waits for the device except every `log_interval` steps, when
the progress bar is updated and a non-finite loss is detected. The trainer knows nothing about
particular models or data sets.

Batches of in-memory image sets are gathered by index on the device (`data.in_memory`), others come
from a DataLoader. Randomness is seeded per batch from (seed, epoch, batch, rank), augmentation per
sample from the sampler's sample seeds or, in memory, per epoch from (seed, epoch); SIGINT / SIGTERM
are turned into `Interrupted` only at points where the saved state is consistent, so a run resumed
from any interruption continues exactly as the straight run."""
import contextlib
import math
import random
import signal
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler
from tqdm import tqdm

from ..data.in_memory import InMemoryLoader, as_in_memory
from ..data.seeding import sample_seeds
from . import checkpoint as ckpt
from .atomic import remove_leftovers, write_text_atomic
from .batch import BatchTransform
from .config import TrainConfig
from .distributed import is_distributed, is_main, rank, world_size
from .ema import ModelEma
from .inference import evaluate_batches, topk_for
from .logger import MetricsLog
from .losses import compute_loss, predicted_labels, probabilities
from .metrics import Meter
from .precision import autocast
from .sampler import EpochSampler, RepeatedAugSampler
from .signals import Interrupted, Signals


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' was asked for but CUDA is not available here; use --device cpu or auto")
    return device


def scaled_lr(cfg: TrainConfig) -> float | None:
    """The configured lr, scaled by global batch / lr_base_batch when that is set (DeiT's rule)."""
    if cfg.lr is None or not cfg.lr_base_batch:
        return cfg.lr
    return cfg.lr * cfg.batch_size * world_size() * cfg.accum_steps / cfg.lr_base_batch


class Trainer:
    """Trains `model` on `train_set`, validating on `val_set` (both yield (input, target) pairs).

    `optimizer` and `scheduler` default to those the config names (`danlu.optim`); `run_dir` None
    means nothing is written. `model_info` is stored with every checkpoint so that `evaluate` and
    `predict` can rebuild the model from the weights file alone; its `mean` / `std` normalise uint8
    batches on the device. `train_sampler` defaults to the config's (repeated augmentation or not);
    an `IterableDataset` (tar shards) orders itself and needs none."""

    def __init__(self, model: nn.Module, train_set: Dataset, val_set: Dataset | None, config: TrainConfig | None = None,
                 run_dir: str | Path | None = None, model_info: dict | None = None,
                 optimizer: torch.optim.Optimizer | None = None, scheduler: LRScheduler | ReduceLROnPlateau | None = None,
                 device: torch.device | None = None, train_sampler: Sampler | None = None) -> None:
        from ..optim import create_optimizer, create_scheduler

        self.cfg = config or TrainConfig()
        self.device = device or select_device(self.cfg.device)
        self.model = model.to(self.device)
        if self.cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.train_model = torch.compile(self.model) if self.cfg.compile else self.model
        if is_distributed():
            self.train_model = torch.nn.parallel.DistributedDataParallel(
                self.train_model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.run_dir = Path(run_dir) if run_dir else None
        if self.run_dir and is_main():
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.model_info = model_info or {}
        self.batch = BatchTransform.from_config(self.cfg, self.model_info.get("mean"), self.model_info.get("std"),
                                                getattr(self.model, "num_classes", 0))
        self.train_sampler = None if isinstance(train_set, IterableDataset) else train_sampler or self._sampler(train_set)
        self.train_set = train_set
        self.train_loader = self._loader(train_set, self.train_sampler, drop_last=self.batch.mixup is not None)
        self.val_loader = self._loader(val_set, None if isinstance(val_set, IterableDataset) else EpochSampler(
            len(val_set), shuffle=False, rank=rank(), world_size=world_size(), pad=False)) if val_set else None
        self.optimizer = optimizer or create_optimizer(self.model, self.cfg.optimizer, lr=scaled_lr(self.cfg),
                                                       weight_decay=self.cfg.weight_decay,
                                                       **({"layer_decay": self.cfg.layer_decay} if self.cfg.layer_decay else {}),
                                                       **self.cfg.optimizer_kwargs)
        self.scheduler = scheduler if optimizer else create_scheduler(
            self.optimizer, self.cfg.schedule, self.cfg.epochs, self.steps_per_epoch, self.cfg.warmup_epochs,
            warmup_lr=self.cfg.warmup_lr, min_lr=self.cfg.min_lr, **self.cfg.schedule_kwargs)
        cfg = self.cfg
        self.ema = ModelEma(self.model, cfg.model_ema_decay, cfg.model_ema_warmup, cfg.model_ema_interval,
                            cfg.model_ema_ramp, cfg.model_ema_lookahead,
                            cfg.epochs * self.steps_per_epoch) if cfg.model_ema else None
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.cfg.fp16)
        self.history, self.start_epoch, self.start_step, self.partial = [], 0, 0, None
        self.best = -math.inf
        self._signals = Signals()
        self._own_optimizer = optimizer is None

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch (batches / accum_steps, rounded up)."""
        return math.ceil(len(self.train_loader) / self.cfg.accum_steps)

    def _sampler(self, dataset):
        seeded = getattr(dataset, "sample_seeds", False)
        if self.cfg.repeated_aug:
            return RepeatedAugSampler(len(dataset), self.cfg.seed, rank(), world_size(), sample_seeds=seeded)
        return EpochSampler(len(dataset), self.cfg.seed, True, rank(), world_size(), sample_seeds=seeded)

    def _loader(self, dataset, sampler, drop_last=False):
        """In-memory image sets: batches gathered by index on the device (`data.in_memory`). Others: a
        DataLoader, whose workers outlive an epoch only where nothing in them depends on it: samples that
        carry their own seeds. The loader's own generator (reseeded per epoch) seeds the workers, so that
        starting them leaves the training RNG alone: a resumed run, which starts them once more, stays exact."""
        in_memory = as_in_memory(dataset)
        if in_memory is not None:
            return InMemoryLoader(in_memory, self.cfg.batch_size, sampler, self.device, drop_last, self.cfg.seed)
        workers = self.cfg.workers
        return DataLoader(dataset, batch_size=self.cfg.batch_size, sampler=sampler, num_workers=workers,
                          pin_memory=self.device.type == "cuda", drop_last=drop_last,
                          persistent_workers=workers > 0 and getattr(sampler, "sample_seeds", False),
                          prefetch_factor=4 if workers > 0 else None, generator=torch.Generator())

    def _autocast(self):
        return autocast(self.device.type, self.cfg.bf16, self.cfg.fp16)

    def _to_device(self, x, y):
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.cfg.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def _topk(self):
        return topk_for(self.model)

    # ---- resume -------------------------------------------------------------------------------
    def resume(self, path: str | Path) -> Path:
        """Continue from a checkpoint (run dir, checkpoint dir or weights file), exactly where it stopped;
        an unreadable newest checkpoint is skipped, with a warning, for the newest readable one. The
        config's optimizer settings (lr, weight decay, optimizer kwargs) replace the saved ones."""
        ckpt_dir, weights, ema_weights, state = ckpt.read_resumable(path)  # tidies the checkpoints too
        if self.run_dir and is_main():
            remove_leftovers(self.run_dir)
        if self.ema is not None and ema_weights is None:
            raise ValueError(f"'{ckpt_dir}' was saved without EMA weights; resume it without --model-ema")
        self.model.load_state_dict(weights)
        self._load_optimizer(state)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.module.load_state_dict(ema_weights)
            self.ema.load_state_dict(state["ema"])
        self.start_epoch, self.start_step = state["epoch"], state["step"]
        self.history, self.best = list(state["history"]), state["best"]
        self.partial = state.get("partial")
        ckpt.set_rng_state(state["rng"])
        return ckpt_dir

    def _load_optimizer(self, state):
        """The saved optimizer and schedule state, with the settings this config gives (the schedule's base
        rates recomputed from its lr) in place of the saved ones."""
        from ..optim import OPTIMIZERS
        from ..optim.schedules import WarmupDecay

        preset = OPTIMIZERS.get(self.cfg.optimizer.lower(), (None, {}))[1]
        given = {"lr", "initial_lr", "weight_decay", *preset, *self.cfg.optimizer_kwargs} if self._own_optimizer else ()
        settings = [{k: v for k, v in g.items() if k in given} for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, values in zip(self.optimizer.param_groups, settings):
            group.update(values)
        if self.scheduler is None or state.get("scheduler") is None:
            return
        self.scheduler.load_state_dict(state["scheduler"])
        if not self._own_optimizer:
            return
        if isinstance(self.scheduler, WarmupDecay):
            self.scheduler.base_lrs = [values.get("initial_lr", values["lr"]) for values in settings]
            lrs = self.scheduler.get_lr()
            for group, lr in zip(self.optimizer.param_groups, lrs):
                group["lr"] = lr
            self.scheduler._last_lr = lrs
        else:  # a plateau schedule's reductions live in the saved rates (a changed --lr is refused)
            for group, saved in zip(self.optimizer.param_groups, state["optimizer"]["param_groups"]):
                group["lr"] = saved["lr"]

    def _training_state(self, epoch, step, meter=None):
        return {"optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "epoch": epoch, "step": step, "history": self.history, "best": self.best,
                "partial": meter.state() if meter else None,
                "rng": ckpt.rng_state()}

    def save(self, name: str, epoch: int, step: int, meter: Meter | None = None, mark_last: bool = True) -> Path | None:
        if self.run_dir is None or not is_main():
            return None
        return ckpt.save_checkpoint(self.run_dir / "checkpoints", name, self.model, self.model_info,
                                    self._training_state(epoch, step, meter), mark_last,
                                    ema_model=self.ema.module if self.ema is not None else None)

    # ---- training -----------------------------------------------------------------------------
    def fit(self) -> list[dict]:
        """Train for `config.epochs` epochs (from where `resume` left off); returns the metrics history.
        SIGINT and SIGTERM save the `interrupted` checkpoint and raise `Interrupted`."""
        log = None
        if self.run_dir and is_main():
            self.write_config()
            log = MetricsLog(self.run_dir, self.history)
        self._progress = (self.start_epoch, self.start_step, self.partial and _loaded_meter(self._topk(), self.partial))
        if self.start_epoch == self.start_step == 0 and not self.cfg.pretrained and hasattr(self.model, "init_from_data"):
            self._init_from_data()
        with self._signals:
            try:
                self._fit(log)
            except KeyboardInterrupt as e:
                with self._signals.deferred():
                    epoch, step, meter = self._progress
                    where = self.save(ckpt.INTERRUPTED, epoch, step, meter)
                signum = getattr(e, "signum", signal.SIGINT)
                what = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
                raise Interrupted(f"{what} at epoch {epoch + 1}, step {step}"
                                  + (f"; checkpoint written to {where}, continue with --resume {self.run_dir}"
                                     if where else ""), signum) from None
            finally:
                if log:
                    log.plot()  # the run's curves however it ended
        return self.history

    def _init_from_data(self, count=5000):
        """A data-dependent init (airbench's whitening layer) from `count` training images drawn at random by
        the run's seed, unaugmented and normalised; the EMA starts from the initialised weights. airbench takes
        the first 5,000 of CIFAR-10's batches, already in random order; an image folder is stored class by class,
        and its first 5,000 would all be airplanes."""
        images = getattr(self.train_loader, "images", None)
        if images is None:
            raise ValueError(f"{type(self.model).__name__} initialises itself from training images, which needs an "
                             "in-memory data set trained at its stored size (e.g. cifar10 without --img-size)")
        picked = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.cfg.seed))[:count]
        x = self.batch.normalize(images.index_select(0, picked.to(images.device)))
        self.model.init_from_data(x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x)
        if self.ema is not None:
            self.ema.module.load_state_dict(self.model.state_dict())

    def write_config(self) -> None:
        """config.yaml, so that `evaluate`, `predict` and `--resume` can rebuild the run (with the options
        a resume changed); a model not built by name is recorded as such."""
        values = self.cfg.to_dict()
        if "model" not in self.model_info:
            values["model"] = None
            values["custom_model"] = type(self.model).__qualname__
        write_text_atomic(self.run_dir / "config.yaml", yaml.safe_dump(values, sort_keys=False))

    def _fit(self, log):
        for epoch in range(self.start_epoch, self.cfg.epochs):
            train_metrics, seconds, seen = self._train_epoch(epoch)
            row = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train_metrics.items()}}
            if self.val_loader is not None:  # an interrupt here saves the finished training; resuming redoes this
                row.update({f"val_{k}": v for k, v in self.evaluate().items()})
                if self.ema is not None and not self.cfg.model_ema_lookahead:  # lookahead: the weights are the EMA
                    row.update({f"val_ema_{k}": v for k, v in self.evaluate(model=self.ema.module).items()})
                if self.cfg.tta != "none" and epoch + 1 == self.cfg.epochs:
                    row.update({f"val_tta_{k}": v for k, v in self.evaluate(tta=self.cfg.tta).items()})
            with self._signals.deferred():
                self._end_epoch(epoch, row, seconds, seen, log)

    def _end_epoch(self, epoch, row, seconds, seen, log):
        """Schedule step, metrics row, summary line and checkpoints: all or nothing for an interrupt."""
        row.update(lr=self.optimizer.param_groups[-1]["lr"], epoch_time_s=seconds, images_per_s=seen / max(seconds, 1e-9))
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
        if log:
            log.append(row)
        score = row.get("val_acc1", row["train_acc1"])
        improved = score > self.best
        self.best = max(self.best, score)  # stored in this epoch's checkpoint too
        self._save_epoch(epoch + 1, improved)
        if log and self.cfg.plot_interval and (epoch + 1) % self.cfg.plot_interval == 0:
            log.plot()
        self.start_step, self.partial = 0, None
        self._progress = (epoch + 1, 0, None)

    def _save_epoch(self, done, improved):
        """The epoch checkpoint every `checkpoint_interval` epochs and after the last; `best` when the score
        improved, as links to the epoch checkpoint's files when that was just written."""
        if self.run_dir is None or not is_main():
            return
        saved = None
        if done % self.cfg.checkpoint_interval == 0 or done == self.cfg.epochs:
            saved = self.save(f"epoch_{done:04d}", done, 0)
        if improved and saved:
            ckpt.link_checkpoint(self.run_dir / "checkpoints", saved.name, ckpt.BEST)
        elif improved:
            self.save(ckpt.BEST, done, 0, mark_last=False)
        ckpt.prune_checkpoints(self.run_dir / "checkpoints", self.cfg.keep_last)

    def _set_epoch(self, epoch):
        start = self.start_step * self.cfg.batch_size  # this process's samples already done
        # `is None`, not `or`: a sampler resumed at the end of its epoch is empty, hence falsy
        (self.train_set if self.train_sampler is None else self.train_sampler).set_epoch(epoch, start=start)
        if isinstance(self.train_loader, DataLoader):
            self.train_loader.generator.manual_seed(self.cfg.seed + 1_000_003 * epoch + rank())

    def _batch_seeds(self, epoch, first, total):
        """Dropout, drop-path, erasing and Mixup draw from a seed per (seed, epoch, batch, rank), here for
        the epoch's batches `first` to `total`: a run resumed at any batch draws what the straight run drew."""
        processes, position = world_size(), first * world_size() + rank()
        return sample_seeds(self.cfg.seed + _BATCH_SEED_KEY, epoch, range(position, total * processes, processes))

    def _seed(self, seed):
        random.seed(seed)
        if self.device.type == "cpu":  # torch.manual_seed also queues seeds for every accelerator: 0.1 ms a call
            torch.default_generator.manual_seed(seed)
        else:
            torch.manual_seed(seed)

    def _train_epoch(self, epoch):
        self.train_model.train()
        if hasattr(self.model, "set_epoch"):  # e.g. airbench's whitening bias, trained in the first epochs only
            self.model.set_epoch(epoch)
        self._set_epoch(epoch)
        meter = _loaded_meter(self._topk(), self.partial)
        total, accum = self.start_step + len(self.train_loader), self.cfg.accum_steps
        step, seen, start = self.start_step, 0, time.perf_counter()
        seeds = iter(self._batch_seeds(epoch, step, total))
        bar = tqdm(total=total, initial=self.start_step, leave=False, desc=f"epoch {epoch + 1}/{self.cfg.epochs}",
                   disable=not (self.cfg.progress and is_main()), dynamic_ncols=True, mininterval=0.5)
        for x, y in self.train_loader:
            self._seed(next(seeds))
            x, y = self._to_device(x, y)
            x, target, labels = self.batch(x, y)
            group_start = step - step % accum
            group_end = min(group_start + accum, total)  # the step after this accumulation group
            sync = step + 1 == group_end or not is_distributed()
            with self._autocast(), (contextlib.nullcontext() if sync else self.train_model.no_sync()):
                logits = self.train_model(x)
                loss = compute_loss(logits, target, self.cfg.label_smoothing)
            group = group_end - group_start
            self.scaler.scale(loss / group if group > 1 else loss).backward()
            meter.update(loss, logits, labels)
            step, seen = step + 1, seen + y.shape[0]
            if step == group_end:
                with self._signals.deferred():
                    self._optimizer_step()
                    self._progress = (epoch, step, meter.snapshot())
            bar.update()
            if step % self.cfg.log_interval == 0 or step == total:  # the only host synchronisation
                loss_now, acc_now = meter.running()
                self._check_finite(meter, epoch)
                bar.set_postfix(loss=f"{loss_now:.4f}", acc=f"{acc_now:.1f}",
                                img_s=f"{seen * world_size() / (time.perf_counter() - start):.0f}", refresh=False)
        bar.close()
        seconds = time.perf_counter() - start
        return meter.reduced(self.device), seconds, seen * world_size()

    def _optimizer_step(self):
        if self.cfg.clip_grad:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        if self.scheduler is not None and self.scheduler.interval == "step":
            self.scheduler.step()

    def _check_finite(self, meter, epoch):
        """Stop at the first non-finite loss the epoch's meter has read."""
        if meter.non_finite is None:
            return
        bad_step, bad_loss = self.start_step + meter.non_finite[0], meter.non_finite[1]
        last = ckpt.resolve_checkpoint(self.run_dir) if self.run_dir and (self.run_dir / "checkpoints" / ckpt.POINTER).exists() else None
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint had been written yet"
        raise NonFiniteLossError(f"the loss became {bad_loss} at epoch {epoch + 1}, step {bad_step + 1}; "
                                 f"training stopped and {kept}: lower the learning rate (--lr) or clip gradients "
                                 "(--clip-grad)")

    # ---- evaluation ---------------------------------------------------------------------------
    def evaluate(self, loader: Iterable | None = None, return_predictions: bool = False, model: nn.Module | None = None,
                 tta: str = "none") -> dict | tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
        """{'loss', 'acc1'[, 'acc5']} of `model` (default: the trained one) over `loader` (default: the
        validation set), reduced over processes, with test-time augmentation `tta`.

        With `return_predictions`, also (targets, predicted labels, probabilities) of this process."""
        meter, predictions = evaluate_batches(model or self.model, loader or self.val_loader, self._prepare,
                                              self._autocast, self._topk(), return_predictions, tta)
        metrics = meter.reduced(self.device)
        if not return_predictions:
            return metrics
        targets, probs = predictions
        return metrics, targets, predicted_labels(probs), probs

    def _prepare(self, x, y):
        x, y = self._to_device(x, y)
        return self.batch.normalize(x), y

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(labels, probabilities) for a batch of inputs (uint8 images are normalised as in training)."""
        self.model.eval()
        with self._autocast():
            probs = probabilities(self.model(self.batch.normalize(inputs.to(self.device))).float()).cpu()
        return predicted_labels(probs), probs


_BATCH_SEED_KEY = 1 << 40  # keeps the batch seeds apart from the sample seeds of the same run


def _loaded_meter(ks, partial):
    meter = Meter(ks)
    if partial:
        meter.load(partial)
    return meter


def _summary(row, epochs):
    parts = [f"epoch {row['epoch']}/{epochs}", f"train loss {row['train_loss']:.4f} acc {row['train_acc1']:.2f}%"]
    if "val_loss" in row:
        parts.append(f"val loss {row['val_loss']:.4f} acc {row['val_acc1']:.2f}%"
                     + (f" top-5 {row['val_acc5']:.2f}%" if "val_acc5" in row else ""))
    if "val_ema_acc1" in row:
        parts.append(f"EMA acc {row['val_ema_acc1']:.2f}%")
    parts.append(f"{row['images_per_s']:.0f} img/s")
    return " | ".join(parts)
