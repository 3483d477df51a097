"""The `danlu` command. Thin: each subcommand parses its arguments and calls the library. Bad input of
any kind ends in one `danlu: error: ...` line and exit status 2, never a traceback (DANLU_DEBUG=1 shows
it); an interrupted training run exits 130 (SIGINT) or 143 (SIGTERM) after saving its checkpoint."""
import argparse
import contextlib
import os
import signal
import sys


class _Parser(argparse.ArgumentParser):
    """argparse's errors as one line, like every other danlu error."""

    def error(self, message):
        self.exit(2, f"danlu: error: {message} (see {self.prog} --help)\n")


def _count(kind, low):
    """An argparse type: an int of at least `low`."""
    def parse(text):
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{kind} must be at least {low}, got {value}")
        return value
    parse.__name__ = "int"
    return parse


def _add_models(sub):
    p = sub.add_parser("models", help="list registered models with parameters and FLOPs")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'vit_*' or 'ptnt'")
    p.add_argument("--no-flops", action="store_true", help="skip FLOP counting (faster for big models)")
    p.set_defaults(func=_models)


def _models(args):
    import torch

    from .models import create_model, get_model_config, list_models
    from .models.flops import count_flops, count_params

    names = list_models(args.pattern)
    if not names:
        print(f"no registered model matches '{args.pattern}'", file=sys.stderr)
        return 1
    print(f"{'model':32s} {'params':>14s} {'GFLOPs':>9s}  input")
    for name in names:
        cfg = get_model_config(name)
        with torch.device("meta") if args.no_flops else contextlib.nullcontext():
            model = create_model(name)
        example = torch.zeros(1, *cfg.input_size, dtype=torch.long) if cfg.input_kind == "tokens" else cfg.input_size
        flops = "-" if args.no_flops else f"{count_flops(model, example) / 1e9:.3f}"
        print(f"{name:32s} {count_params(model):>14,d} {flops:>9s}  {'x'.join(map(str, cfg.input_size))}")
    return 0


def _train_flags(p):
    """One flag per TrainConfig field, with the field's help; every default is None so that only options
    given on the command line override the recipe, config file or resumed run."""
    import typing

    from .engine import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for name, f in TrainConfig.fields().items():
        flag, kind = "--" + name.replace("_", "-"), hints[name]
        if kind is bool:  # --x and --no-x: a recipe may turn an option on that the command line turns off
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f.metadata["help"])
        else:
            base = next((t for t in typing.get_args(kind) if t is not type(None)), kind)
            parse = {dict: _yaml_of(dict), list: _yaml_of(list)}.get(base, base)
            p.add_argument(flag, type=parse, default=None, help=f.metadata["help"])


def _add_train(sub):
    p = sub.add_parser("train", help="train a model (with no options: the default model on the offline digits data)")
    _train_flags(p)
    p.add_argument("--config", help="YAML file of options (command-line options override it)")
    p.add_argument("--recipe", help="a named recipe shipped with danlu (see --list-recipes)")
    p.add_argument("--list-recipes", action="store_true", help="list the named recipes and exit")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration as YAML and exit")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run where it stopped (options given override it)")
    p.set_defaults(func=_train)


def _yaml_of(kind):
    def parse(text):
        import yaml
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = None
        if not isinstance(value, kind):
            example = "'{key: value}'" if kind is dict else "'[0.08, 1.0]'"
            raise argparse.ArgumentTypeError(f"expected a YAML {kind.__name__} such as {example}, got {text!r}")
        return value
    return parse


def _train(args):
    import yaml

    from .engine import TrainConfig, build_trainer
    from .engine.config import list_recipes, resolve_config

    if args.list_recipes:
        print("\n".join(list_recipes()))
        return 0
    given = {k: v for k, v in vars(args).items() if v is not None and k in TrainConfig.fields()}
    cfg = resolve_config(args.recipe, args.config, args.resume, **given)
    if args.print_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    from .engine.distributed import cleanup, configure_threads, is_main
    configure_threads(cfg.threads)
    trainer = build_trainer(cfg, resume=args.resume)
    history = trainer.fit()
    main_process = is_main()
    cleanup()
    if main_process:
        last = history[-1] if history else {}
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in last.items()}
        print("final: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
        print(f"run directory: {trainer.run_dir}")
    return 0


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="evaluate a run's checkpoint on its validation data")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("--data-dir", help="data folder, if it moved since training")
    p.add_argument("--batch-size", type=_count("--batch-size", 1), default=256)
    p.add_argument("--best", action="store_true", help="use the best checkpoint instead of the last")
    p.set_defaults(func=_evaluate)


def _evaluate(args):
    from .apps.evaluation_report import write_evaluation_report
    from .engine import evaluate

    result = evaluate(args.checkpoint, args.best, args.data_dir, args.batch_size)
    print(f"checkpoint: {result.checkpoint}")
    print(", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()))
    write_evaluation_report(result.checkpoint.parent.parent / "evaluation", result.dataset, result.targets,
                            result.labels, result.info)
    return 0


def _add_predict(sub):
    p = sub.add_parser("predict", help="predict the class of image files with a trained checkpoint")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="run directory, checkpoint directory or weights file")
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--text", action="append", default=[], help='a text to classify with a text model (repeatable)')
    p.add_argument("--top-k", type=_count("--top-k", 1), default=1, help="also print the k most likely classes")
    p.set_defaults(func=_predict)


def _predict(args):
    from .engine import predict

    _, all_probs, classes = predict(args.checkpoint, files=args.files, texts=args.text)
    for name, probs in zip([repr(t) for t in args.text] or args.files, all_probs):
        top = probs.topk(min(args.top_k, len(probs)))
        ranked = ", ".join(f"{classes[i]} {p:.4f}" for p, i in zip(top.values.tolist(), top.indices.tolist()))
        print(f"{name}: {ranked}")
    return 0


def _add_shards(sub):
    p = sub.add_parser("shards", help="write an image-folder split as tar shards (webdataset layout) for streaming")
    p.add_argument("source", help="image-folder tree or .tar holding SPLIT/<class>/<image>")
    p.add_argument("out", help="folder for SPLIT-000000.tar, ... and SPLIT.json")
    p.add_argument("--split", default="train", help="split to write (default train; run again with val)")
    p.add_argument("--maxcount", type=_count("--maxcount", 1), default=10000, help="samples per shard (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the order that mixes the classes across shards")
    p.set_defaults(func=_shards)


def _shards(args):
    from .data.shards import write_shards

    paths = write_shards(args.source, args.out, args.split, args.maxcount, seed=args.seed)
    print(f"wrote {len(paths)} shard(s) of '{args.split}' to {args.out}")
    return 0


def _add_stylize(sub):
    p = sub.add_parser("stylize", help="neural style transfer (Gatys et al.): a photo repainted in the style of another image")
    p.add_argument("--content", required=True, help="the photo whose content is kept")
    p.add_argument("--style", required=True, help="the image whose style (textures, colours) is taken; resized to the content's size")
    p.add_argument("--out", required=True, help="output PNG file")
    p.add_argument("--size", type=int, default=256, help="longer side of the output in pixels (default 256)")
    p.add_argument("--steps", type=_count("--steps", 1), default=300, help="Adam steps on the image (default 300)")
    p.add_argument("--style-weight", type=float, default=1e6, help="weight of the style loss (default 1e6)")
    p.add_argument("--content-weight", type=float, default=1.0, help="weight of the content loss (default 1)")
    p.add_argument("--lr", type=float, default=0.02, help="Adam learning rate in pixel units (default 0.02)")
    p.add_argument("--weights", help="torchvision VGG19 weight file (vgg19-dcbb9e9d.pth); without it the features are random")
    p.add_argument("--seed", type=int, default=0, help="seed of the random VGG19 weights when --weights is not given")
    p.set_defaults(func=_stylize)


def _stylize(args):
    import torch

    from .apps.style_transfer import stylize_files

    torch.manual_seed(args.seed)
    history = stylize_files(args.content, args.style, args.out, args.size, args.steps, args.style_weight,
                            args.content_weight, args.lr, args.weights)
    first, last = history[0], history[-1]
    print(f"total loss {first['total']:.4g} -> {last['total']:.4g} "
          f"(content {last['content']:.4g}, style {last['style']:.4g}); wrote {args.out}")
    return 0


def _size(text):
    """'224' or '160x192' (height x width) as an int or an (h, w) pair."""
    parts = text.lower().split("x")
    if len(parts) not in (1, 2) or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected a size such as 224 or 160x192, got {text!r}")
    return int(parts[0]) if len(parts) == 1 else (int(parts[0]), int(parts[1]))


def _add_export(sub):
    p = sub.add_parser("export", help="export a model to ONNX (ParC kernels fixed at the export size) and check it with onnxruntime")
    p.add_argument("--model", required=True, help="registered model name")
    p.add_argument("--img-size", type=_size, default=224, help="export input size, 224 or HxW (default 224)")
    p.add_argument("--out", default="model.onnx", help="output .onnx file (default model.onnx)")
    p.add_argument("--weights", help="weights file (safetensors or PyTorch) to load first")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 or later (default 17)")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the onnxruntime comparison")
    p.set_defaults(func=_export)


def _export(args):
    from .apps.export import run

    run(args.model, args.img_size, args.out, args.weights, args.opset, args.verify)
    return 0


def _model_source_flags(p, weights_help, required=False):
    """--weights, --model, --num-classes, --img-size: where erf and gradcam get their model."""
    p.add_argument("--weights", required=required, help=weights_help)
    p.add_argument("--model", help="registered model name, for a plain weights file (default: the --weights run's)")
    p.add_argument("--num-classes", type=_count("--num-classes", 1), default=None,
                   help="classes a --model weights file was trained for (default: the model's)")
    p.add_argument("--img-size", type=_size, default=None, help="input size of a --model, 224 or HxW (default: the model's)")


def _add_erf(sub):
    p = sub.add_parser("erf", help="effective receptive field: heat-map PNG and high-contribution area ratios")
    _model_source_flags(p, "a run or checkpoint directory (its model, normalisation and channels), or with --model "
                        "a weights file; without it the model is measured at initialisation")
    p.add_argument("--images", help="folder of images; without it uniform-noise images are used")
    p.add_argument("--num-images", type=_count("--num-images", 1), default=8, help="images to average over (default 8)")
    p.add_argument("--out", default=None, help="heat-map PNG to write")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the noise images")
    p.set_defaults(func=_erf)


def _erf(args):
    from .apps.erf import run

    run(args.model, args.weights, args.images, args.num_images, args.img_size, args.out, args.seed, args.num_classes)
    return 0


def _add_gradcam(sub):
    p = sub.add_parser("gradcam", help="Grad-CAM overlay PNG: where the evidence for a class lies in an image")
    _model_source_flags(p, "a run or checkpoint directory (its model, normalisation, channels and class names), or "
                        "with --model a weights file (safetensors or PyTorch)", required=True)
    p.add_argument("--image", required=True, help="image file")
    p.add_argument("--out", default="gradcam.png", help="output PNG (default gradcam.png)")
    p.add_argument("--target-layer", default=None, help="submodule name, e.g. stages.3 or blocks.11.norm1 "
                   "(default: the last feature map the class depends on)")
    p.add_argument("--class-idx", type=int, default=None, help="class to explain (default: the predicted one)")
    p.set_defaults(func=_gradcam)


def _gradcam(args):
    from .apps.gradcam import run

    run(args.model, args.weights, args.image, args.out, args.target_layer, args.class_idx, args.img_size, args.num_classes)
    return 0


def _add_optim_viz(sub):
    p = sub.add_parser("optim-viz", help="optimizer paths on 2-D test functions, one contour-plot PNG per function")
    p.add_argument("--functions", default="rosenbrock,beale,saddle,rastrigin,himmelblau",
                   help="comma-separated: rosenbrock, beale, saddle, rastrigin, himmelblau")
    p.add_argument("--optimizers", default="sgd,sgdm,nag,adagrad,rmsprop,adam,nadam,swats",
                   help="comma-separated optimizer names (as create_optimizer takes them)")
    p.add_argument("--steps", type=_count("--steps", 1), default=300, help="steps per path (default 300)")
    p.add_argument("--lr", type=float, default=None, help="one lr for all (default: best of a log grid per path)")
    p.add_argument("--out", default="trajectories", help="output folder (default ./trajectories)")
    p.set_defaults(func=_optim_viz)


def _optim_viz(args):
    from .apps.trajectories import run

    summary = run(args.functions.split(","), args.optimizers.split(","), args.steps, args.lr, args.out)
    for fn, finals in summary.items():
        print(f"{fn}: " + ", ".join(f"{o} {loss:.3g} (lr {lr:.2g})" for o, (lr, loss) in finals.items()))
    print(f"wrote {len(summary)} PNG file(s) to {args.out}")
    return 0


# Each entry adds one subcommand; keep one `_add_<name>` function per subcommand above.
COMMANDS = [_add_train, _add_evaluate, _add_predict, _add_models, _add_shards, _add_stylize, _add_export, _add_erf, _add_gradcam,
            _add_optim_viz]


def build_parser():
    parser = _Parser(prog="danlu", description="danlu: train and analyse global-receptive-field vision models")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a one-line usage error
        return e.code
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except KeyboardInterrupt as e:
        print(f"danlu: {e or 'interrupted'}", file=sys.stderr)
        return 128 + getattr(e, "signum", signal.SIGINT)
    except (ValueError, OSError, RuntimeError) as e:  # OSError: missing, unwritable or full paths
        if os.environ.get("DANLU_DEBUG"):
            raise
        os_error = isinstance(e, OSError) and e.strerror
        message = " ".join((e.strerror if os_error else str(e)).split())  # one line
        where = f" ('{e.filename}')" if os_error and e.filename else ""
        from .engine.distributed import is_distributed, rank, world_size
        process = f"rank {rank()} of {world_size()}: " if is_distributed() else ""  # which process of a torchrun job
        print(f"danlu: error: {process}{message}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
