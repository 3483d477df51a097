"""The one "did you mean" hint: its phrasing, its cut-off, and that every unknown-name error uses it."""
import pytest
from torch import nn

from danlu.data import create_dataset
from danlu.engine.config import TrainConfig, recipe_path
from danlu.optim import SGD, create_optimizer, create_scheduler
from danlu.suggest import did_you_mean


def test_phrasing_names_up_to_three_close_choices_best_first():
    # difflib ratios to 'adamm': adam 8/9, nadam 4/5, adamw 4/5; amsgrad 1/3 and sgd 1/4 fall below the 0.6 cut-off
    assert did_you_mean("adamm", ["sgd", "amsgrad", "adamw", "nadam", "adam"]) == \
        " (did you mean adam or nadam or adamw?)"
    assert did_you_mean("cosin", ("none", "step", "cosine")) == " (did you mean cosine?)"


def test_cut_off_is_a_ratio_of_0_6():
    # ratio 2 * matches / total length: 'abc' vs 'abd' is 4/6 (offered), 'ab' vs 'ac' is 2/4 (not offered)
    assert did_you_mean("abc", ["abd"]) == " (did you mean abd?)"
    assert did_you_mean("ab", ["ac"]) == ""
    assert did_you_mean("zzz", []) == ""


@pytest.mark.parametrize("make_error, expected", [
    (lambda: create_dataset("cifar1"), "unknown dataset 'cifar1' (did you mean cifar10?); known: cifar10, "),
    (lambda: recipe_path("ptnt_x"), "unknown recipe 'ptnt_x' (did you mean ptnt_s or ptnt_m or ptnt_b?); known: "),
    (lambda: TrainConfig().updated(epoch=3), "unknown option(s) epoch (did you mean epochs?)"),
    (lambda: TrainConfig(augment="crop-flp").check(),
     "augment 'crop-flp' (did you mean crop-flip?) is not one of none, flip, crop-flip, imagenet"),
    (lambda: create_optimizer([nn.Parameter()], "adamm"),
     "unknown optimizer 'adamm' (did you mean adam or nadam or adamw?); choose one of: sgd, "),
    (lambda: create_scheduler(SGD([nn.Parameter()], lr=0.1), "cosin", epochs=3),
     "unknown schedule 'cosin' (did you mean cosine?); choose one of: none, "),
])
def test_every_unknown_name_error_uses_the_hint(make_error, expected):
    with pytest.raises(ValueError) as err:
        make_error()
    assert str(err.value).startswith(expected), str(err.value)
