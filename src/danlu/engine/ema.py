"""Model EMA: an exponential moving average of the weights, updated after every optimizer step
(timm's ModelEmaV3; DeiT and the TNT papers evaluate it beside the raw weights), or every few steps
with the average copied back into the trained weights (airbench's lookahead)."""
import copy

import torch


class ModelEma:
    """ema = decay x ema + (1 - decay) x weights, over every floating-point parameter and buffer
    (integer buffers such as BatchNorm's counter are copied). With `warmup`, the decay at update t is
    min(decay, 1 - (1 + t) ** -2/3), timm's warm-up, so early averages do not hold the random init.

    `interval` N averages every N optimizer steps with decay ** N (`decay` stays per step); `ramp` p
    scales that by (step / total_steps) ** p, so the average forgets fast early and slowly late
    (airbench: decay 0.95, N = 5, p = 3); `lookahead` copies the average back into the trained weights
    at each update and after the last step, which then trains on from the average (Zhang et al. 2019's
    Lookahead, as airbench uses it)."""

    def __init__(self, model, decay=0.9998, warmup=False, interval=1, ramp=0.0, lookahead=False, total_steps=None):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"model_ema_decay must be in [0, 1), got {decay}; DeiT uses 0.99996")
        if ramp and not total_steps:
            raise ValueError("an EMA decay ramp needs the run's total number of optimizer steps (total_steps)")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.warmup, self.updates = decay, warmup, 0
        self.interval, self.ramp, self.lookahead, self.total_steps = interval, ramp, lookahead, total_steps
        self._pairs = None

    def decay_at(self, t):
        """The decay of the update after optimizer step t + 1 (t counts steps from 0)."""
        decay = min(self.decay, 1.0 - (1.0 + t) ** (-2.0 / 3.0)) if self.warmup else self.decay
        decay **= self.interval
        if self.ramp:
            decay *= (min(t + 1, self.total_steps) / self.total_steps) ** self.ramp
        return decay

    @torch.no_grad()
    def update(self, model):
        if self._pairs is None:  # state_dict tensors share storage with the live weights: collect once
            pairs = list(zip(self.module.state_dict().values(), model.state_dict().values()))
            self._pairs = ([e for e, _ in pairs if e.is_floating_point()], [m for e, m in pairs if e.is_floating_point()],
                           [(e, m) for e, m in pairs if not e.is_floating_point()])
        ema, live, exact = self._pairs
        t, self.updates = self.updates, self.updates + 1  # `updates` counts optimizer steps
        if self.updates % self.interval == 0:
            torch._foreach_lerp_(ema, live, 1.0 - self.decay_at(t))
            for e, m in exact:
                e.copy_(m)
            if self.lookahead:
                torch._foreach_copy_(live, ema)
        elif self.lookahead and self.updates == self.total_steps:  # training ends on the average
            torch._foreach_copy_(live, ema)

    def state_dict(self):
        """The weights are saved in their own safetensors file; this is the rest."""
        return {"updates": self.updates}

    def load_state_dict(self, state):
        self.updates = state["updates"]
