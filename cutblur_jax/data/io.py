"""Reading and writing images as ``uint8 [H, W, 3]`` arrays.

``read_image`` is the one place where files become arrays, so every data set
sees the same conversions. What it does with unusual files:

* 8-bit RGB: returned as stored.
* Grayscale (``L``, 1-bit): replicated to three channels, as the reference's
  ``skimage.color.gray2rgb`` does.
* Alpha (``RGBA``, ``LA``, ``PA``): the alpha channel is dropped and the stored
  colours are kept (no compositing). The reference keeps four channels, which its
  three-channel networks cannot take; dropping alpha is what ``image[..., :3]``
  of its ``skimage.io.imread`` result would give.
* Palette (``P``), ``CMYK``, ``YCbCr``: converted to RGB with Pillow.
* 16 bits per channel (grayscale or RGB(A) PNG): mapped to 8 bits with
  ``round(value / 257)``, the exact rescaling of [0, 65535] onto [0, 255]. (The
  reference's readers truncate 16-bit RGB to the high byte and pass 16-bit
  grayscale through as uint16; neither is what a user wants.)
* 32-bit integer (``I``) images whose values fit in 16 bits are treated as 16-bit;
  floating point (``F``) and other modes are rejected.
* EXIF orientation is ignored, as in the reference.

A missing, unreadable, unidentifiable or truncated file raises ``ValueError``
naming the path. Truncation is caught because Pillow's ``LOAD_TRUNCATED_IMAGES``
is left at its default (off); this module never sets it.

``write_image`` writes PNG atomically: the bytes go to a temporary file in the
target directory, which is then renamed over the target, so a crash never leaves
a half-written image behind.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
from PIL import Image

from cutblur_jax.paths import as_path, is_url

PathLike = str | os.PathLike

# Pillow has no 16-bit colour mode: it decodes 16-bit colour PNGs to 8 bits by keeping
# each sample's high byte. For each such raw mode: a raw mode of the same width whose
# unpacker keeps the low bytes instead, and where those low bytes land per colour channel.
_COLOR16_LOW_BYTES = {
  "RGB;16B": ("RGB;16L", (0, 1, 2)),  # unpacks as little-endian: keeps bytes 1, 3, 5
  "RGBA;16B": ("RGBA;16L", (0, 1, 2)),
  "LA;16B": ("ABGR", (2, 2, 2)),  # bytes (L_hi, L_lo, A_hi, A_lo) -> B = L_lo
}


def _readable(path: Path) -> Path | io.BytesIO:
  """What Pillow opens: a local path, or a URL's bytes (an object store has no seek)."""
  return io.BytesIO(path.read_bytes()) if is_url(path) else path


def open_file(path: PathLike) -> BinaryIO:
  """``path`` opened for reading in binary, a local file or a URL (``paths.as_path``)."""
  return as_path(path).open("rb")


def _from_16_bit(values: np.ndarray) -> np.ndarray:
  """Maps [0, 65535] onto [0, 255] with ``round(v / 257)`` (exact, integer arithmetic)."""
  values = values.astype(np.uint32)
  # round(v / 257) == floor((v + 128) / 257) because 257 is odd (no ties).
  return ((values + 128) // 257).astype(np.uint8)


def _open(path: Path) -> tuple[Image.Image, list]:
  """The decoded image and the raw modes Pillow decoded it with (``load`` clears ``tile``)."""
  image = None
  try:
    image = Image.open(_readable(path))
    tiles = list(image.tile)
    image.load()
  except FileNotFoundError as error:
    raise ValueError(f"Image file not found: {str(path)!r}.") from error
  except IsADirectoryError as error:
    raise ValueError(f"Expected an image file, got a directory: {str(path)!r}.") from error
  except Image.UnidentifiedImageError as error:
    raise ValueError(f"Not a readable image file: {str(path)!r}.") from error
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
    # Truncated or corrupt data: Pillow raises OSError ("image file is truncated",
    # "broken data stream") or SyntaxError (bad chunk CRC).
    if image is not None:
      image.close()
    raise ValueError(f"Could not decode image file {str(path)!r}: {error}") from error
  return image, tiles


def _color_16_bit(path: Path, image: Image.Image, tiles: list) -> np.ndarray | None:
  """``uint16 [H, W, 3]`` colour of a 16-bit colour PNG (alpha dropped), else None."""
  if not tiles or any(t.args not in _COLOR16_LOW_BYTES for t in tiles):
    return None
  probe = Image.open(_readable(path))
  try:
    high = np.asarray(image)[..., :3]
    # Decode again, asking for the low byte of every sample instead of the high one.
    probe.tile = [t._replace(args=_COLOR16_LOW_BYTES[t.args][0]) for t in probe.tile]
    probe.load()
    low = np.asarray(probe)[..., list(_COLOR16_LOW_BYTES[tiles[0].args][1])]
  except (OSError, SyntaxError, ValueError) as error:
    raise ValueError(f"Could not decode image file {str(path)!r}: {error}") from error
  finally:
    probe.close()
  return high.astype(np.uint16) << 8 | low.astype(np.uint16)


def read_image(path: PathLike) -> np.ndarray:
  """Reads an image file as a C-contiguous, writable ``uint8 [H, W, 3]`` RGB array.

  See the module docstring for how grayscale, alpha, palette and 16-bit files
  are converted.

  Args:
    path: an image file Pillow can read (PNG, JPEG, BMP, TIFF, ...).

  Returns:
    ``uint8 [H, W, 3]``.

  Raises:
    ValueError: the file is missing, unreadable, truncated, or in an unsupported
      mode; the message names the path.

  Examples:
    >>> image = read_image("DIV2K/DIV2K_train_HR/0001.png")  # doctest: +SKIP
    >>> image.shape, image.dtype  # doctest: +SKIP
    ((1404, 2040, 3), dtype('uint8'))
  """
  path = as_path(path)
  image, tiles = _open(path)
  with image:
    mode = image.mode
    if mode in ("RGB", "RGBA") and (wide := _color_16_bit(path, image, tiles)) is not None:
      array = _from_16_bit(wide)
    elif mode.startswith("I"):
      # "I;16", "I;16B", "I;16L" (16-bit grayscale) and "I" (32-bit integer).
      values = np.asarray(image)
      if values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError(
          f"Image file {str(path)!r} has {mode} pixels outside [0, 65535]; "
          "only 8- and 16-bit images are supported."
        )
      array = np.repeat(_from_16_bit(values)[..., None], 3, axis=-1)
    elif mode in ("L", "1", "LA"):
      array = np.repeat(np.asarray(image.convert("L"))[..., None], 3, axis=-1)
    elif mode in ("RGB", "RGBA", "RGBX", "RGBa"):
      array = np.asarray(image)[..., :3]
    elif mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
      try:
        array = np.asarray(image.convert("RGB"))
      except ValueError as error:  # a conversion Pillow does not implement
        raise ValueError(
          f"Image file {str(path)!r} has mode {mode!r}, which Pillow cannot convert to RGB: {error}"
        ) from error
    else:
      raise ValueError(f"Image file {str(path)!r} has unsupported mode {mode!r}.")
  # Pillow's arrays view immutable bytes; callers get an array they own.
  if not (array.flags.writeable and array.flags.c_contiguous and array.flags.owndata):
    array = np.array(array, dtype=np.uint8, order="C")
  return array


def write_image(path: PathLike, image: Any, *, compress_level: int = 6) -> Path:
  """Writes a ``uint8`` image to ``path`` as PNG, atomically.

  The PNG format is used whatever the file suffix. Parent directories are
  created. The data goes to a temporary file beside ``path`` that is renamed over
  it (``os.replace``), so readers never see a partial file and a failure leaves
  no file behind.

  Args:
    path: destination file.
    image: ``uint8`` array (NumPy or JAX) of shape ``[H, W]``, ``[H, W, 1]``,
      ``[H, W, 3]`` or ``[H, W, 4]``.
    compress_level: zlib level 0 (fastest) to 9 (smallest).

  Returns:
    ``path`` as a ``Path``.

  Raises:
    TypeError: ``image`` is not ``uint8``.
    ValueError: ``image`` has an unsupported shape.

  Examples:
    >>> write_image("/tmp/out.png", np.zeros((4, 4, 3), np.uint8))  # doctest: +SKIP
    PosixPath('/tmp/out.png')
  """
  path = as_path(path)
  array = np.asarray(image)
  if array.dtype != np.uint8:
    raise TypeError(
      f"`image` for {str(path)!r} must be uint8, got {array.dtype}; quantize it first "
      "(cutblur_jax.image.quantize)."
    )
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))):
    raise ValueError(
      f"`image` for {str(path)!r} must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], "
      f"got shape {array.shape}."
    )
  if not 0 <= compress_level <= 9:
    raise ValueError(f"`compress_level` must be in 0..9, got {compress_level}.")
  return write_atomic(
    path,
    lambda stream: Image.fromarray(np.ascontiguousarray(array)).save(
      stream, format="PNG", compress_level=compress_level
    ),
  )


def write_atomic(
  path: PathLike, write: Callable[[BinaryIO], Any], *, overwrite: bool = True
) -> Path:
  """Runs ``write(stream)`` into a temporary file beside ``path``, then renames it to ``path``.

  Readers never see a partial file, and a failure (or Ctrl-C) leaves no file behind: the
  temporary file is removed and the error raised. Parent directories are created.

  Args:
    path: destination file.
    write: writes the content to a binary stream.
    overwrite: replace an existing ``path`` (otherwise ``FileExistsError``, naming it).

  Returns:
    ``path`` as a ``Path``.

  Examples:
    >>> write_atomic("/tmp/x.bin", lambda f: f.write(b"abc"))  # doctest: +SKIP
    PosixPath('/tmp/x.bin')
  """
  path = as_path(path)
  if not overwrite and path.exists():
    raise FileExistsError(f"{str(path)!r} exists; pass overwrite (--overwrite) to replace it.")
  path.parent.mkdir(parents=True, exist_ok=True)
  if is_url(path):  # an object store uploads the finished bytes in one request: atomic
    buffer = io.BytesIO()
    write(buffer)
    path.write_bytes(buffer.getvalue())
    return path
  # A unique name opened with O_EXCL (not mkstemp, whose 0600 mode would survive the
  # rename): the file gets the usual permissions from the umask.
  temp_name = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
  try:
    with open(temp_name, "xb") as stream:
      write(stream)
    os.replace(temp_name, path)
  except BaseException as error:
    try:
      os.unlink(temp_name)
    except FileNotFoundError:
      pass
    if isinstance(error, OSError) and not error.filename:  # a failed write() names no file
      raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    raise
  return path


def write_json(
  path: PathLike,
  data: Any,
  *,
  overwrite: bool = True,
  sort_keys: bool = True,
  allow_nan: bool = True,
  default: Callable[[Any], Any] | None = str,
) -> Path:
  """Writes ``data`` as indented JSON (and a final newline) with ``write_atomic``.

  ``default`` converts values JSON cannot hold (``None``: refuse them with ``TypeError``,
  before anything is written).

  Examples:
    >>> write_json("/tmp/config.json", {"lr": 1e-4})  # doctest: +SKIP
    PosixPath('/tmp/config.json')
  """
  text = (
    json.dumps(data, indent=2, sort_keys=sort_keys, default=default, allow_nan=allow_nan) + "\n"
  )
  return write_atomic(path, lambda stream: stream.write(text.encode()), overwrite=overwrite)
