"""`deconv-arena`: train, evaluate and serve. Errors a user can cause print one line and exit 2.

The commands live by group in `deconv_arena/commands/` (training, models, service); this module builds the parser
from the groups and runs the chosen command."""

from __future__ import annotations

import argparse
import os
import sys

from deconv_arena.args import UserError
from deconv_arena.commands import service, stored_models, tables, train

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GROUPS = (train, service, stored_models, tables)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deconv-arena",
        description="Transposed vs resize-convolution generators on MNIST: train, evaluate, serve, rate.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.run(args)
    except UserError as e:
        print(f"deconv-arena {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"deconv-arena {args.command}: interrupted; nothing was installed for the unfinished variant",
            file=sys.stderr,
        )
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
