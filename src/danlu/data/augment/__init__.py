"""The DeiT / timm training augmentations: per-sample PIL transforms that run in DataLoader workers
(RandomResizedCrop, flip, colour jitter, RandAugment) and per-batch tensor ops that run on the
training device (random erasing, Mixup / CutMix)."""
