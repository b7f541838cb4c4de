"""Write a deterministic, incompressible stand-in for a model weights file: make_weights.py PATH SIZE."""

import random
import sys
from pathlib import Path


def main() -> None:
    path, size = Path(sys.argv[1]), int(sys.argv[2])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(42).randbytes(size))


if __name__ == "__main__":
    main()
