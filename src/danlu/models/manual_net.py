"""The seed's first example: a 5-3-1 sigmoid network trained with hand-written backpropagation.

It shows the four steps (forward, loss, backward, update) without autograd. With the squared
error L = 0.5 * sum((y - out)^2), the seed's `error = y - out` terms are exactly -dL/dz, so adding
them times the learning rate is gradient descent. `manual_gradients` returns dL/dparam, which the
tests check against autograd."""
import torch


class SigmoidNet:
    def __init__(self, n_input=5, n_hidden=3, n_output=1, generator=None):
        self.w1 = torch.randn(n_input, n_hidden, generator=generator)
        self.b1 = torch.randn(1, n_hidden, generator=generator)
        self.w2 = torch.randn(n_hidden, n_output, generator=generator)
        self.b2 = torch.randn(1, n_output, generator=generator)

    def parameters(self):
        return {"w1": self.w1, "b1": self.b1, "w2": self.w2, "b2": self.b2}

    def forward(self, x):
        """Returns (hidden activation, output); both are needed by the backward pass."""
        a1 = torch.sigmoid(x @ self.w1 + self.b1)
        return a1, torch.sigmoid(a1 @ self.w2 + self.b2)

    def loss(self, x, y):
        return 0.5 * ((y - self.forward(x)[1]) ** 2).sum()

    def manual_gradients(self, x, y):
        """dL/dparam by the chain rule; sigmoid'(z) = a (1 - a)."""
        a1, out = self.forward(x)
        d_out = -(y - out) * out * (1 - out)       # dL/dz2
        d_hidden = (d_out @ self.w2.T) * a1 * (1 - a1)  # dL/dz1
        return {"w1": x.T @ d_hidden, "b1": d_hidden.sum(0, keepdim=True),
                "w2": a1.T @ d_out, "b2": d_out.sum(0, keepdim=True)}

    def sgd_step(self, x, y, lr=0.1):
        for name, grad in self.manual_gradients(x, y).items():
            self.parameters()[name].sub_(lr * grad)
