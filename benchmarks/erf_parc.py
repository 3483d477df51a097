"""Effective receptive fields of ConvNets with and without ParC, at initialisation (or from weight files).

The ParC papers claim that ParC enlarges the ERF. This script measures the high-contribution area
ratios (danlu.apps.erf: RepLKNet's method) of convnext_xt vs parc_convnext_xt and resnet50 vs
parc_resnet50 on the same images, and draws the four maps side by side.

ConvNeXt initialises its layer scales to 1e-6, so at initialisation every block is an identity up to
1e-6 and the ERF is that of the stem and the downsampling layers alone, the same with or without ParC;
the 'layer scale 1' rows set them to 1 to expose what the blocks themselves can reach.

    python benchmarks/erf_parc.py --images ../shared/data/images --num-images 4 --figure docs/images/erf_parc.png
"""
import argparse
import time
from pathlib import Path

import torch

from danlu import create_model
from danlu.apps.erf import THRESHOLDS, erf, random_images
from danlu.data.image_files import list_images, load_images

VARIANTS = [  # (model, layer scale set to 1, label)
    ("convnext_xt", False, "convnext_xt"),
    ("parc_convnext_xt", False, "parc_convnext_xt"),
    ("convnext_xt", True, "convnext_xt, layer scale 1"),
    ("parc_convnext_xt", True, "parc_convnext_xt, layer scale 1"),
    ("resnet50", False, "resnet50"),
    ("parc_resnet50", False, "parc_resnet50"),
]
PICTURED = ["convnext_xt, layer scale 1", "parc_convnext_xt, layer scale 1", "resnet50", "parc_resnet50"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images"),
                   help="folder of images (default ../shared/data/images; noise images when it does not exist)")
    p.add_argument("--num-images", type=int, default=4)
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--figure", default=None, help="PNG with the four pictured maps")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # all four models use ImageNet statistics
    if Path(args.images).is_dir():
        x, source = load_images(list_images(args.images)[:args.num_images], args.img_size, mean, std), args.images
    else:
        x, source = random_images(args.num_images, args.img_size, mean, std, args.seed), "uniform noise"
    print(f"ERF at {args.img_size}x{args.img_size}, {len(x)} images from {source}, seed {args.seed}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| model | " + " | ".join(f"area ratio @ {t}" for t in THRESHOLDS) + " |")
    print("|---|" + "---|" * len(THRESHOLDS))
    maps = {}
    for name, unit_scale, label in VARIANTS:
        torch.manual_seed(args.seed)  # same initialisation for the layers the two models share
        model = create_model(name)
        if unit_scale:
            with torch.no_grad():
                for n, prm in model.named_parameters():
                    if n.endswith("gamma"):
                        prm.fill_(1.0)
        start = time.perf_counter()
        maps[label], ratios = erf(model, x, batch_size=2)
        print(f"| {label} | " + " | ".join(f"{r:.4f}" for r in ratios.values()) + f" |  ({time.perf_counter() - start:.0f} s)")
    if args.figure:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(PICTURED), figsize=(2.4 * len(PICTURED), 2.75), dpi=80)
        for ax, label in zip(axes, PICTURED):
            im = ax.imshow(maps[label], cmap="RdYlGn", vmin=0, vmax=1)
            ax.set_title(label, fontsize=8)
            ax.set_axis_off()
        fig.colorbar(im, ax=list(axes), orientation="horizontal", fraction=0.05, pad=0.04)
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, bbox_inches="tight")
        print(f"figure written to {args.figure} ({Path(args.figure).stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
