"""Tests only (tests/test_faults.py): `deconv-arena serve` in this process with every decode held until a gate file
exists (at most two minutes), so a test keeps requests in flight for as long as it needs. The product has no such
switch: this wraps the batcher's model call from outside. Run as `python -m tests.hooks.gated_serve GATE [serve
options]` (one worker: the wrapping lives in this process)."""

from __future__ import annotations

import os
import sys
import time

from app.serving import predict


def hold_decodes(gate: str) -> None:
    """Every Batcher built from now on waits for `gate` before each model call."""
    built = predict.Batcher.__init__

    def init(self, *args, **kwargs) -> None:
        built(self, *args, **kwargs)
        decode_now = self.decode_now

        def decode(latents):
            deadline = time.monotonic() + 120
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.01)
            return decode_now(latents)

        self.decode_now = decode

    predict.Batcher.__init__ = init


if __name__ == "__main__":
    hold_decodes(sys.argv[1])
    from deconv_arena.cli import main

    sys.exit(main(["serve", *sys.argv[2:]]))
