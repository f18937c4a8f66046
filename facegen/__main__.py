"""`python -m facegen` and the `facegen` command that `pip install -e .` puts on the PATH."""

import os
import sys

from facegen.cli import main


def run() -> None:
    code = main()
    # imported once the command has run: --help and option errors exit before, without waiting for torch
    from facegen.train import distributed

    if distributed.from_environment().enabled:
        # A torchrun worker ends here, without interpreter shutdown. torch keeps the gloo process group alive past
        # destroy_process_group (DistributedDataParallel leaves references to it), and a gloo thread that frees its
        # last collective's tensors once shutdown has begun needs the GIL and aborts the process ("terminate called
        # without an active exception", about 1 run in 40 on a loaded 2-core machine). Everything is on disk.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
