"""``python -m optimization_emulator``: the local Nextmv Cloud and NVCF (cuOpt) emulator.

See docs/emulator.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from optimization_emulator.config import ConfigError, load_config
from optimization_emulator.server import run


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
