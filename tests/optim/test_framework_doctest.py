"""The optimizer framework's docstring example runs as written and is the rule it names."""
import doctest

import torch

from danlu.optim import framework


def test_docstring_example_runs():
    result = doctest.testmod(framework)
    assert result.failed == 0 and result.attempted > 0


def test_docstring_example_is_adam_with_a_centred_second_moment():
    (example,) = [t for t in doctest.DocTestFinder().find(framework) if t.name == framework.__name__]
    assert doctest.DocTestRunner().run(example, clear_globs=False).failed == 0
    w = torch.tensor([1.0, -2.0], dtype=torch.float64)  # a plain float64 reference of the same rule
    m = v = a = torch.zeros(2, dtype=torch.float64)
    for t, g in enumerate(torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64), 1):
        m, v, a = 0.5 * m + 0.5 * g, 0.75 * v + 0.25 * g * g, 0.75 * a + 0.25 * g
        w = w - 0.1 * (m / (1 - 0.5**t)) / ((v - a * a) / (1 - 0.75**t)).sqrt()
    torch.testing.assert_close(example.globs["w"].detach(), w, rtol=1e-12, atol=1e-12)
