"""The tensor ops the optimizer pieces are written in, with two implementations of one vocabulary.

Every op takes lists of tensors, as `torch._foreach_*` does. `Foreach` is the eager reference: one foreach call per
op, with Python-float scalars, in torch's for-loop order so results match torch bit for bit. `Pointwise` is the same
math tensor by tensor, with scalars that may be 0-d tensors; the fused path traces a whole chain through it into one
graph, which the compiler turns into one kernel per tile (see `fused`). Ops ending in `_` work in place on their first
argument; the others return new lists. `other` is a list (elementwise) or a scalar.
"""
import torch


class Foreach:
    add_ = staticmethod(torch._foreach_add_)
    add = staticmethod(torch._foreach_add)
    mul_ = staticmethod(torch._foreach_mul_)
    div_ = staticmethod(torch._foreach_div_)
    div = staticmethod(torch._foreach_div)
    sqrt_ = staticmethod(torch._foreach_sqrt_)
    sqrt = staticmethod(torch._foreach_sqrt)
    neg = staticmethod(torch._foreach_neg)
    lerp_ = staticmethod(torch._foreach_lerp_)
    addcmul_ = staticmethod(torch._foreach_addcmul_)
    addcmul = staticmethod(torch._foreach_addcmul)
    addcdiv_ = staticmethod(torch._foreach_addcdiv_)
    maximum_ = staticmethod(torch._foreach_maximum_)
    copy_ = staticmethod(torch._foreach_copy_)

    @staticmethod
    def clone(xs):
        return [x.clone() for x in xs]

    @staticmethod
    def dot(xs, ys):
        """sum_i x_i^T y_i over the lists, as a 0-d float64 tensor (no host sync)."""
        return torch.stack([torch.dot(x.reshape(-1), y.reshape(-1)) for x, y in zip(xs, ys)]).sum(dtype=torch.float64)


def opmath_dtype(dtype):
    """The dtype CPU and CUDA kernels compute a floating `dtype` in (ATen's opmath): float64 stays, the rest float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _times(s, y):
    """s * y, skipping the multiply for the literal 1 (ATen's alpha / value convention: self + s * y)."""
    return y if isinstance(s, (int, float)) and s == 1 else s * y


class Pointwise:
    @staticmethod
    def add_(xs, other, alpha=1):
        if isinstance(other, list):
            for x, y in zip(xs, other):
                x.add_(_times(alpha, y))
        else:
            for x in xs:
                x.add_(other)

    @staticmethod
    def add(xs, other, alpha=1):
        if isinstance(other, list):
            return [x + _times(alpha, y) for x, y in zip(xs, other)]
        return [x + other for x in xs]

    @staticmethod
    def mul_(xs, other):
        for x, y in zip(xs, other) if isinstance(other, list) else ((x, other) for x in xs):
            x.mul_(y)

    @staticmethod
    def div_(xs, other):
        for x, y in zip(xs, other) if isinstance(other, list) else ((x, other) for x in xs):
            x.div_(y)

    @staticmethod
    def div(xs, other):
        return [x / y for x, y in zip(xs, other)] if isinstance(other, list) else [x / other for x in xs]

    @staticmethod
    def sqrt_(xs):
        for x in xs:
            x.sqrt_()

    @staticmethod
    def sqrt(xs):
        return [x.sqrt() for x in xs]

    @staticmethod
    def neg(xs):
        return [-x for x in xs]

    @staticmethod
    def lerp_(xs, ends, weight):
        """torch's lerp, x + w (y - x) for |w| < 0.5 and y - (1 - w)(y - x) otherwise, written out so that the choice
        of branch and its coefficient are scalar work, computed once per step, not once per element."""
        if not isinstance(weight, torch.Tensor) or not xs:
            return Foreach.lerp_(xs, ends, weight)
        w = weight.to(opmath_dtype(xs[0].dtype))  # as ATen: the weight in the op's compute dtype
        small = w.abs() < 0.5
        coefficient = torch.where(small, w, w - 1)
        for x, y in zip(xs, ends):
            x.copy_(torch.where(small, x, y) + coefficient * (y - x))

    @staticmethod
    def addcmul_(xs, a, b, value=1):
        for x, u, v in zip(xs, a, b):
            x.add_(_times(value, u) * v)

    @staticmethod
    def addcmul(xs, a, b, value=1):
        return [x + _times(value, u) * v for x, u, v in zip(xs, a, b)]

    @staticmethod
    def addcdiv_(xs, a, b, value=1):
        for x, u, v in zip(xs, a, b):
            x.add_(_times(value, u) / v)

    @staticmethod
    def maximum_(xs, ys):
        for x, y in zip(xs, ys):
            x.copy_(torch.maximum(x, y))

    @staticmethod
    def copy_(xs, ys):
        for x, y in zip(xs, ys):
            x.copy_(y)

    @staticmethod
    def clone(xs):
        return [x.clone() for x in xs]

    @staticmethod
    def dot(xs, ys):
        return sum((x * y).sum() for x, y in zip(xs, ys)).double()
