"""Optimizer trajectories on the 2-D test functions, and the `danlu optim-viz` command."""
import numpy as np
import pytest
from PIL import Image

from danlu import cli
from danlu.apps import trajectories as T


@pytest.mark.parametrize("name,point", [("rosenbrock", (1, 1)), ("beale", (3, 0.5)), ("rastrigin", (0, 0)),
                                        ("himmelblau", (3, 2)), ("himmelblau", (-2.805118, 3.131312)),
                                        ("himmelblau", (-3.779310, -3.283186)), ("himmelblau", (3.584428, -1.848126))])
def test_global_minima_are_zero(name, point):
    assert T.FUNCTIONS[name].f(np.float64(point[0]), np.float64(point[1])) == pytest.approx(0, abs=1e-9)


def test_sgd_path_follows_the_analytic_gradient():
    # Rosenbrock gradient at (-2, 2): d/dx = -2(1 - x) - 400 x (y - x^2) = -1606, d/dy = 200 (y - x^2) = -400.
    path, losses, _ = T.run_path("rosenbrock", "sgd", lr=1e-4, steps=1)
    assert path[1] == pytest.approx([-2 + 0.1606, 2 + 0.04])
    assert losses[0] == pytest.approx(9 + 100 * 4)


def test_adam_reaches_the_beale_minimum():
    lr, path, losses, _ = T.best_path("beale", "adam", steps=300, lr=0.1)
    assert losses[-1] < 1e-3 and path[-1] == pytest.approx([3, 0.5], abs=0.1)


def test_lr_grid_picks_the_lowest_final_loss_in_view():
    lr, path, losses, _ = T.best_path("himmelblau", "sgd", steps=50)
    assert lr in T.LR_GRID
    for other in T.LR_GRID:
        other_path, other_losses, _ = T.run_path("himmelblau", "sgd", float(other), 50)
        assert losses[-1] <= T._score(T.FUNCTIONS["himmelblau"], other_path, other_losses)


def test_optim_viz_command_writes_pngs(tmp_path, capsys):
    argv = ["optim-viz", "--functions", "saddle,himmelblau", "--optimizers", "sgdm,adam,swats", "--steps", "20",
            "--lr", "0.01", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "saddle: sgdm" in out and "wrote 2 PNG file(s)" in out
    for name in ("saddle", "himmelblau"):
        img = Image.open(tmp_path / f"{name}.png")
        assert img.format == "PNG" and img.size[0] > 400


def test_unknown_function_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="Unknown test function"):
        T.run(["booth"], ["sgd"], steps=2, out_dir=tmp_path)
