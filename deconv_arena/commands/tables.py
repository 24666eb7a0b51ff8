"""The generated documentation: the README's and docs/evaluation.md's tables and findings, and curves.png."""

from __future__ import annotations

import argparse
from pathlib import Path

from deconv_arena.args import add_store

DOCUMENTS = (Path("README.md"), Path("docs/evaluation.md"))


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tables",
        help="rewrite the generated blocks of README.md and docs/evaluation.md from the store, and its curves.png",
        description="Rewrites every generated block (ablation, initialisation, conditional and replicate tables, the "
        "study table, the findings) of README.md and docs/evaluation.md in the current directory from what the "
        "store ships, then draws the store's curves.png (needs matplotlib: the train extra). The tests fail when a "
        "block differs from the store.",
    )
    p.set_defaults(run=cmd)
    add_store(p)


def cmd(args: argparse.Namespace) -> None:
    from deconv_arena.generated_docs import update_readme
    from training.evaluation.curves_figure import plot_curves

    for target in DOCUMENTS:
        print(f"{target}: {'updated' if update_readme(target, args.store) else 'already up to date'}")
    print(f"curves figure: {plot_curves(args.store) or 'no model has training curves yet'}")
