"""The README's quick start runs as written (only its data path is pointed at the shared data)."""
import re
import time

import pytest
from conftest import REPO


def quick_start_code(readme):
    """The ```python blocks of the README's "Quick start" section, joined."""
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.S))


def test_quick_start_runs(data_dir, tmp_path, monkeypatch):
    code = quick_start_code((REPO / "README.md").read_text(encoding="utf-8"))
    assert "danlu.train(" in code and "load_pretrained(" in code  # the section is found and has its snippets
    monkeypatch.chdir(tmp_path)  # the run directory goes to ./runs
    start = time.perf_counter()
    namespace = {}
    exec(compile(code.replace('"../shared/data/mnist"', repr(str(data_dir / "mnist"))), "README.md", "exec"), namespace)
    # what the snippet claims: a trained run's metrics, predictions for its 4 inputs
    assert 0 <= namespace["trainer"].history[-1]["val_acc1"] <= 100
    assert namespace["labels"].shape == (4,) and namespace["probs"].shape == (4, 10)
    assert time.perf_counter() - start < 60  # a quick start, not a training run


def test_optimizer_snippets_run():
    """The "Optimizers" section's python blocks: the factory calls and a new optimizer from the pieces."""
    import torch

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Optimizers", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["sched"].interval == "step" and len(namespace["opt"].param_groups) == 2
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = namespace["CenteredAdam"]([w], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (w ** 2).sum().backward()
        opt.step()
    assert torch.all(w.abs() < torch.tensor([1.0, 2.0]))  # it descends


def _section_blocks(title):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"\n### {title}", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.mark.slow
@pytest.mark.parametrize("title, files", [("PyramidTNT and TNT", {"ptnt-s-82.0.pth.tar": "ptnt_s_patch16_256"}),
                                          ("ParC and Fast-ParC", {"official_parc_convnext_xt.pth": "parc_convnext_xt"})])
def test_model_snippets_run(title, files, tmp_path, monkeypatch):
    """The model sections' python blocks, with the weight files they name written from danlu's own models
    (the official files load the same way: tests/models compare against their real key lists)."""
    import torch

    import danlu

    monkeypatch.chdir(tmp_path)
    for name, model in files.items():
        torch.save({"state_dict": danlu.create_model(model).state_dict()}, name)
    blocks = _section_blocks(title)
    assert blocks
    namespace = {"torch": torch, "danlu": danlu}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
