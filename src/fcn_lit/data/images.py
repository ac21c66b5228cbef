"""Reading photos as uint8 RGB arrays, for training and prediction alike: the EXIF orientation
(applied, ignored or refused) and 16/32-bit images scaled to 8 bits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fcn_lit.errors import BadSampleError

# What PIL raises on a file it cannot decode (truncated, corrupt, not an image, too large).
READ_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
ORIENTATION_CHOICES = ("refuse", "apply", "ignore")
EXIF_ORIENTATION = 0x0112
# How a viewer turns the stored pixels for display, per EXIF orientation value.
ORIENTATIONS = {
    2: "mirrored left-right",
    3: "rotated 180 degrees",
    4: "mirrored top-bottom",
    5: "mirrored and rotated 90 degrees counter-clockwise",
    6: "rotated 90 degrees clockwise",
    7: "mirrored and rotated 90 degrees clockwise",
    8: "rotated 90 degrees counter-clockwise",
}
# Full scales a high bit-depth greyscale image may use, smallest first: it is scaled to 0..255 by
# the first that holds its largest value.
FULL_SCALES = {"F": (1.0, 255.0, 65535.0), "I": (255.0, 65535.0, 2.0**31 - 1)}


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation tag: 1 when the stored pixels display as they are, 2..8 otherwise."""
    value = image.getexif().get(EXIF_ORIENTATION, 1)
    return value if value in ORIENTATIONS else 1


def displayed_size(path: Path) -> tuple[int, int]:
    """(width, height) of the image as a viewer displays it (EXIF orientation applied)."""
    with Image.open(path) as image:
        width, height = image.size
        return (height, width) if exif_orientation(image) >= 5 else (width, height)


def to_rgb8(image: Image.Image) -> np.ndarray:
    """uint8 HxWx3. Greyscale of more than 8 bits is scaled, not clipped to white: 16-bit (I;16) by
    65535; 32-bit integer (I) by 255, 65535 or 2**31-1 and float (F) by 1, 255, 65535 or else its own
    maximum, whichever first holds the image's largest value; negative values become 0."""
    if image.mode not in FULL_SCALES and not image.mode.startswith("I;16"):
        return np.asarray(image.convert("RGB"))
    values = np.asarray(image).astype(np.float64)
    top = values.max(initial=0.0)
    scales = (65535.0,) if image.mode.startswith("I;16") else FULL_SCALES[image.mode]
    full = next((s for s in scales if top <= s), top)
    grey = np.clip(np.rint(values * (255.0 / full)), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def read_rgb(path: Path, orientation: str = "apply", setting: str = "data.exif_orientation") -> np.ndarray:
    """A photo as uint8 HxWx3 RGB. ``orientation``: "apply" turns it as its EXIF orientation says
    (as viewers display it), "ignore" keeps the stored pixels, "refuse" raises a BadSampleError naming
    the file and both choices (as ``<setting>=apply|ignore``) when the orientation is not the identity.
    Undecodable files raise one of ``READ_ERRORS``."""
    if orientation not in ORIENTATION_CHOICES:
        raise ValueError(f"{setting}={orientation!r} is not one of {ORIENTATION_CHOICES}")
    with Image.open(path) as image:
        turn = exif_orientation(image)
        if turn != 1 and orientation == "refuse":
            raise BadSampleError(
                path,
                f"EXIF orientation {turn}: viewers show this photo {ORIENTATIONS[turn]} from its stored "
                f"pixels, so its mask matches one of the two only. Set {setting}=apply if the masks were "
                f"drawn on the photos as displayed, or {setting}=ignore if they match the stored pixels",
            )
        turned = turn != 1 and orientation == "apply"
        if image.format == "JPEG" and image.mode in ("RGB", "L"):
            return decode_jpeg(path, turned)
        return to_rgb8(ImageOps.exif_transpose(image) if turned else image)


def decode_jpeg(path: Path, apply_orientation: bool) -> np.ndarray:
    """An RGB or greyscale JPEG as uint8 HxWx3, by torchvision's libjpeg-turbo decoder: the same pixels
    as PIL's, about 1.4x faster with the RGB conversion (benchmarks/bench_data.py); a file it cannot
    decode raises OSError (one of ``READ_ERRORS``) with the decoder's reason."""
    from torchvision.io import ImageReadMode
    from torchvision.io import decode_jpeg as decode
    from torchvision.io import read_file

    try:
        pixels = decode(read_file(str(path)), mode=ImageReadMode.RGB, apply_exif_orientation=apply_orientation)
    except RuntimeError as error:  # the message starts with the decoder's source location
        raise OSError(f"cannot decode {path}: {str(error).rsplit(', ', 1)[-1]}") from error
    return pixels.permute(1, 2, 0).contiguous().numpy()
