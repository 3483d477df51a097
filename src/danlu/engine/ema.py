"""Model EMA: an exponential moving average of the weights, updated after every optimizer step
(timm's ModelEmaV3; DeiT and the TNT papers evaluate it beside the raw weights)."""
import copy

import torch


class ModelEma:
    """ema = decay x ema + (1 - decay) x weights, over every floating-point parameter and buffer
    (integer buffers such as BatchNorm's counter are copied). With `warmup`, the decay at update t is
    min(decay, 1 - (1 + t) ** -2/3), timm's warm-up, so early averages do not hold the random init."""

    def __init__(self, model, decay=0.9998, warmup=False):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"model_ema_decay must be in [0, 1), got {decay}; DeiT uses 0.99996")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.warmup, self.updates = decay, warmup, 0
        self._pairs = None

    def decay_at(self, t):
        return min(self.decay, 1.0 - (1.0 + t) ** (-2.0 / 3.0)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model):
        if self._pairs is None:  # state_dict tensors share storage with the live weights: collect once
            pairs = list(zip(self.module.state_dict().values(), model.state_dict().values()))
            self._pairs = ([e for e, _ in pairs if e.is_floating_point()], [m for e, m in pairs if e.is_floating_point()],
                           [(e, m) for e, m in pairs if not e.is_floating_point()])
        ema, live, exact = self._pairs
        torch._foreach_lerp_(ema, live, 1.0 - self.decay_at(self.updates))
        for e, m in exact:
            e.copy_(m)
        self.updates += 1

    def state_dict(self):
        """The weights are saved in their own safetensors file; this is the rest."""
        return {"updates": self.updates}

    def load_state_dict(self, state):
        self.updates = state["updates"]
