import pytest

from danlu.engine import TrainConfig
from danlu.engine.config import list_recipes, read_yaml, recipe_path
from danlu.models import create_model, get_model_config

USE_CASE_RECIPES = ["cifar10_cnn_seed", "cifar10_cnn_strong", "mnist_mlp_best", "mnist_mlp_seed",
                    "rt_polarity_lstm_large_vocab", "rt_polarity_lstm_seed"]


@pytest.mark.parametrize("name", USE_CASE_RECIPES)
def test_recipe_is_a_valid_config_for_a_registered_model(name):
    assert name in list_recipes()
    cfg = TrainConfig.from_dict(read_yaml(recipe_path(name)), name)
    get_model_config(cfg.model)  # raises for unknown names
    assert cfg.val_split == 0.2


def test_seed_recipes_carry_the_seed_settings():
    seed_sgd = {"optimizer": "sgd", "lr": 0.01, "weight_decay": 1e-6, "batch_size": 256, "schedule": "none",
                "optimizer_kwargs": {"momentum": 0.9, "nesterov": True}}
    mnist = TrainConfig.from_dict(read_yaml(recipe_path("mnist_mlp_seed")))
    assert {k: getattr(mnist, k) for k in seed_sgd} == seed_sgd
    assert (mnist.model, mnist.dataset, mnist.epochs) == ("mlp", "mnist", 10)
    cifar = TrainConfig.from_dict(read_yaml(recipe_path("cifar10_cnn_seed")))
    assert {k: getattr(cifar, k) for k in seed_sgd} == seed_sgd
    assert (cifar.model, cifar.dataset, cifar.epochs, cifar.augment) == ("simple_cnn", "cifar10", 30, "none")
    text = TrainConfig.from_dict(read_yaml(recipe_path("rt_polarity_lstm_seed")))
    assert (text.optimizer, text.lr, text.batch_size, text.epochs) == ("adam", 0.001, 128, 10)
    assert text.dataset_kwargs == {"vocab_size": 1000, "max_len": 70}


def test_seed_mlp_is_784_128_10_with_sigmoid():
    model = create_model("mlp")
    assert [tuple(p.shape) for p in model.parameters()] == [(128, 784), (128,), (10, 128), (10,)]
    assert type(model.act).__name__ == "Sigmoid"
