import torch
from PIL import Image

from danlu.apps.evaluation_report import confusion_matrix, first_predictions, write_evaluation_report


def test_confusion_matrix_counts_actual_rows_predicted_columns():
    targets = torch.tensor([0, 0, 1, 2, 2, 2])
    labels = torch.tensor([0, 1, 1, 2, 0, 2])
    expected = torch.zeros(3, 3, dtype=torch.long)
    for t, p in zip(targets.tolist(), labels.tolist()):
        expected[t, p] += 1
    assert torch.equal(confusion_matrix(targets, labels, 3), expected)
    assert confusion_matrix(targets, labels, 3).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_first_predictions_prints_class_names_like_the_seed():
    classes = ["airplane", "automobile", "bird"]
    text = first_predictions(torch.tensor([2, 1, 0, 0]), torch.tensor([2, 0, 0, 1]), classes, n=3)
    assert text == ("actual:    ['bird', 'automobile', 'airplane']\n"
                    "predicted: ['bird', 'airplane', 'airplane']")


def test_report_writes_pictures_for_images_and_only_the_matrix_for_text(tmp_path, capsys):
    val = [(torch.randn(3, 8, 8), i % 2) for i in range(5)]
    targets, labels = torch.tensor([0, 1, 0, 1, 0]), torch.tensor([0, 1, 1, 1, 0])
    info = {"classes": ["cat", "dog"], "input_kind": "image", "mean": [0.5] * 3, "std": [0.25] * 3}
    paths = write_evaluation_report(tmp_path / "img", val, targets, labels, info, n_print=2)
    assert [p.name for p in paths] == ["confusion_matrix.png", "predictions.png"]
    assert all(Image.open(p).format == "PNG" for p in paths)
    assert "actual:    ['cat', 'dog']" in capsys.readouterr().out
    text = write_evaluation_report(tmp_path / "txt", val, targets, labels, {**info, "input_kind": "tokens"})
    assert [p.name for p in text] == ["confusion_matrix.png"]
