"""`danlu predict` on image files against the trainer that wrote the checkpoint."""
import torch
from PIL import Image

from danlu.cli import main
from danlu.engine import TrainConfig, build_trainer

HANDFUL = 10  # validation images written as files


def printed_rankings(out, inputs):
    """{class name: probability}, likeliest first, per input in `danlu predict` output ('INPUT: name p, ...')."""
    lines = out.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == inputs
    return [{name: float(p) for name, p in (e.rsplit(" ", 1) for e in line.split(": ", 1)[1].split(", "))}
            for line in lines]


def _predicted(capsys, checkpoint, files, classes):
    """The class printed first and {class name: probability} per file, from `danlu predict` with every class shown."""
    assert main(["predict", str(checkpoint), *map(str, files), "--top-k", str(len(classes))]) == 0
    rankings = printed_rankings(capsys.readouterr().out, list(map(str, files)))
    return [next(iter(r)) for r in rankings], torch.tensor([[r[c] for c in classes] for r in rankings])


def test_predict_gives_the_trainers_labels_and_probabilities(tmp_path, capsys):
    cfg = TrainConfig(epochs=2, lr=0.01, out=str(tmp_path), name="run", progress=False)
    trainer = build_trainer(cfg)
    untrained = trainer.save("untrained", 0, 0, mark_last=False)  # a fresh model's weights, beside the run's own
    trainer.fit()
    info = trainer.model_info
    mean, std = torch.tensor(info["mean"]).view(-1, 1, 1), torch.tensor(info["std"]).view(-1, 1, 1)
    seen, targets = zip(*(trainer.val_loader.dataset[i] for i in range(HANDFUL)))  # 8x8 grey, normalised
    pixels = (torch.stack(seen) * std + mean) * 255
    images = pixels.round().to(torch.uint8)
    torch.testing.assert_close(pixels, images.float(), rtol=0, atol=1e-3)  # the model sees whole grey levels
    files = [tmp_path / f"val{i}.png" for i in range(HANDFUL)]
    for image, path in zip(images, files):
        Image.fromarray(image[0].numpy()).save(path)  # 8-bit grey
    classes = info["classes"]

    names, printed = _predicted(capsys, tmp_path / "run", files, classes)
    labels, probs = trainer.predict(images)
    assert names == [classes[i] for i in labels]
    torch.testing.assert_close(printed, probs, rtol=0, atol=6e-5)  # printed to 4 decimals
    truth = [classes[t] for t in targets]
    assert sum(n == t for n, t in zip(names, truth)) > HANDFUL / 2

    fresh_names, _ = _predicted(capsys, untrained, files, classes)
    assert sum(n == t for n, t in zip(fresh_names, truth)) <= HANDFUL / 2  # the majority above needs training

