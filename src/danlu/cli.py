"""The `danlu` command. Thin: each subcommand parses its arguments and calls the library."""
import argparse
import contextlib
import sys


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
        flops = "-" if args.no_flops else f"{count_flops(model, cfg.input_size) / 1e9:.3f}"
        print(f"{name:32s} {count_params(model):>14,d} {flops:>9s}  {'x'.join(map(str, cfg.input_size))}")
    return 0


# Each entry adds one subcommand; keep one `_add_<name>` function per subcommand above.
COMMANDS = [_add_models]


def build_parser():
    parser = argparse.ArgumentParser(prog="danlu", description="danlu: train and analyse global-receptive-field vision models")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
