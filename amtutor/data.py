"""Patterns to store: random ensembles, corruption, and offline image sets.

Random ensembles (every function takes an explicit, keyword-only PRNG ``key``):

* :func:`binary_patterns` – i.i.d. ±1 entries (the Rademacher ensemble of the capacity analysis),
* :func:`gaussian_patterns` – i.i.d. standard normal entries,
* :func:`spherical_patterns` – uniform on the sphere of radius ``sqrt(N)``.

Corruption: :func:`flip_bits` flips an exact fraction of the entries of a ±1 pattern.

Offline images (no network, deterministic, cached on first use):

* :func:`glyph_images` – ≥1,000 distinct 48×48 binary glyphs rendered from the DejaVu fonts that
  matplotlib ships (D = 2304). Any two images differ in at least 5% of their pixels.
* :func:`digit_images` – the 1,797 handwritten digits that scikit-learn ships, binarised.
* :func:`photographs` – grayscale photographs from scikit-image and scikit-learn, and
  :func:`random_crops` of them (the Energy Transformer's training and test crops).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .validation import as_array, check_int, check_key, check_pm1, check_probability

__all__ = [
    "binary_patterns",
    "gaussian_patterns",
    "spherical_patterns",
    "flip_bits",
    "glyph_images",
    "glyph_labels",
    "digit_images",
    "IMAGE_SIDE",
    "TRAIN_PHOTOGRAPHS",
    "HELD_OUT_PHOTOGRAPHS",
    "photographs",
    "random_crops",
]

IMAGE_SIDE = 48
"""Side of the glyph images: 48×48 pixels, so D = 2304 (the size of the tutorial's sprites)."""


def _check_dtype(dtype, *, pm1: bool):
    """``dtype`` as a NumPy dtype, refusing names that are not dtypes and dtypes that cannot hold the
    values: ±1 patterns need signed integers or real floats (uint8 would turn −1 into 255, bool
    would make everything True); Gaussian and spherical patterns need real floats."""
    try:
        dtype = jnp.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"dtype must be a dtype such as jnp.float32, got {dtype!r}") from err
    floating = jnp.issubdtype(dtype, jnp.floating)
    if pm1 and not (floating or jnp.issubdtype(dtype, jnp.signedinteger)):
        raise ValueError(f"dtype {dtype} cannot hold ±1 patterns (-1 would not survive): use a real "
                         "float (float32) or a signed integer (int8)")
    if not pm1 and not floating:
        raise ValueError(f"dtype must be a real float dtype (e.g. jnp.float32) for real-valued patterns, got {dtype}")
    return dtype


def _check_shape_args(num_patterns, dim):
    check_int("num_patterns", num_patterns, minimum=1)
    check_int("dim", dim, minimum=1)


def binary_patterns(num_patterns: int, dim: int, *, key, dtype=jnp.float32) -> jax.Array:
    """``num_patterns`` random ±1 patterns, each entry +1 or −1 with probability ½.

    Returns an array of shape ``(num_patterns, dim)``; this is eq. (2.4) of the tutorial.
    """
    _check_shape_args(num_patterns, dim)
    check_key("key", key)
    dtype = _check_dtype(dtype, pm1=True)
    return jax.random.rademacher(key, (num_patterns, dim), dtype=dtype)


def gaussian_patterns(num_patterns: int, dim: int, *, key, dtype=jnp.float32) -> jax.Array:
    """``num_patterns`` patterns with i.i.d. standard normal entries, shape ``(num_patterns, dim)``."""
    _check_shape_args(num_patterns, dim)
    check_key("key", key)
    dtype = _check_dtype(dtype, pm1=False)
    return jax.random.normal(key, (num_patterns, dim), dtype=dtype)


def spherical_patterns(num_patterns: int, dim: int, *, key, dtype=jnp.float32) -> jax.Array:
    """Patterns uniform on the sphere of radius ``sqrt(dim)``, shape ``(num_patterns, dim)``.

    The radius ``sqrt(dim)`` makes ``|ξ|² = dim`` exactly, the normalisation of Lucibello & Mézard.
    """
    _check_shape_args(num_patterns, dim)
    check_key("key", key)
    dtype = _check_dtype(dtype, pm1=False)
    g = jax.random.normal(key, (num_patterns, dim), dtype=dtype)
    return g * (jnp.sqrt(dim) / jnp.linalg.norm(g, axis=-1, keepdims=True))


def flip_bits(pattern, flip_fraction: float, *, key) -> jax.Array:
    """Flip exactly ``round(flip_fraction * D)`` randomly chosen entries of a ±1 pattern.

    Args:
        pattern: ±1 array of shape ``(D,)`` or a batch ``(B, D)`` (each row gets its own flips).
        flip_fraction: fraction of the entries to flip, in [0, 1].
        key: PRNG key.

    Returns:
        Array of the same shape as ``pattern`` (and dtype; float16 and bfloat16 come back as float32).
    """
    pattern = as_array("pattern", pattern, ndim=(1, 2))
    check_pm1("pattern", pattern)
    flip_fraction = check_probability("flip_fraction", flip_fraction)
    check_key("key", key)
    pattern = jnp.asarray(pattern)
    dim = pattern.shape[-1]
    num_flips = int(round(flip_fraction * dim))

    def flip_one(row, row_key):
        # Ranking random numbers gives a uniformly random subset of exactly num_flips positions.
        ranks = jnp.argsort(jax.random.uniform(row_key, (dim,)))
        mask = jnp.zeros(dim, bool).at[ranks[:num_flips]].set(True)
        return jnp.where(mask, -row, row)

    if pattern.ndim == 1:
        return flip_one(pattern, key)
    return jax.vmap(flip_one)(pattern, jax.random.split(key, pattern.shape[0]))


# --------------------------------------------------------------------------------------------
# Offline glyph images
# --------------------------------------------------------------------------------------------

# Bold fonts only: thin glyphs are mostly background, nearly all alike to a Hopfield network.
_GLYPH_FONTS = (
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
)
# Printable ASCII, Greek, Cyrillic, arrows, mathematical operators.
_GLYPH_RANGES = ((0x21, 0x7E), (0x391, 0x3C9), (0x410, 0x44F), (0x2190, 0x21FF), (0x2200, 0x22FF))
_MIN_DIFFERENT_FRACTION = 0.05
_GLYPH_CACHE_VERSION = 1


def _cache_dir() -> Path:
    root = os.environ.get("AMTUTOR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "amtutor"
    )
    return Path(root)


def _render_glyph(font, codepoint: int, side: int, margin: int = 2) -> np.ndarray | None:
    """Render one glyph, crop it to its ink, scale it to fill the frame, dilate by one pixel."""
    from PIL import Image  # pillow comes with matplotlib

    if font.get_char_index(codepoint) == 0:
        return None
    font.set_size(96, 72)
    font.clear()
    font.set_text(chr(codepoint), 0.0)
    font.draw_glyphs_to_bitmap(antialiased=True)
    ink = np.asarray(font.get_image(), dtype=np.float32) / 255.0
    rows, cols = np.nonzero(ink > 0.5)
    if rows.size < 20:  # blank or tiny glyphs (dots, commas) carry no picture
        return None
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    inner = side - 2 * margin
    h, w = ink.shape
    scale = inner / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = np.asarray(
        Image.fromarray((ink * 255).astype(np.uint8)).resize((new_w, new_h), Image.LANCZOS),
        dtype=np.float32,
    ) / 255.0
    frame = np.zeros((side, side), np.float32)
    top, left = (side - new_h) // 2, (side - new_w) // 2
    frame[top : top + new_h, left : left + new_w] = resized
    on = frame > 0.5
    # One-pixel dilation (4-neighbourhood) thickens strokes so images are not mostly background.
    dilated = on.copy()
    dilated[1:, :] |= on[:-1, :]
    dilated[:-1, :] |= on[1:, :]
    dilated[:, 1:] |= on[:, :-1]
    dilated[:, :-1] |= on[:, 1:]
    return dilated


def _deduplicate(images: np.ndarray, min_different: int) -> np.ndarray:
    """Greedy filter: keep an image only if it differs from every kept one in >= min_different pixels.

    Works in ±1: the Hamming distance between a and b is (D - a·b) / 2. Inverted images count as
    duplicates too, because a Hopfield network cannot tell σ from −σ.
    """
    dim = images.shape[1]
    kept: list[int] = []
    kept_arr = np.zeros((0, dim), np.float32)
    for i, img in enumerate(images):
        if kept:
            overlaps = kept_arr @ img
            distance = (dim - np.abs(overlaps)) / 2
            if distance.min() < min_different:
                continue
        kept.append(i)
        kept_arr = np.vstack([kept_arr, img[None]])
    return np.asarray(kept)


def _build_glyph_set(side: int) -> tuple[np.ndarray, list[str]]:
    import matplotlib
    from matplotlib.ft2font import FT2Font

    font_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    images, labels = [], []
    for font_name in _GLYPH_FONTS:
        font = FT2Font(str(font_dir / font_name))
        for lo, hi in _GLYPH_RANGES:
            for cp in range(lo, hi + 1):
                img = _render_glyph(font, cp, side)
                if img is not None:
                    images.append(np.where(img, 1.0, -1.0).astype(np.float32).ravel())
                    labels.append(f"{chr(cp)} U+{cp:04X} {font_name.removesuffix('.ttf')}")
    images = np.stack(images)
    keep = _deduplicate(images, int(np.ceil(_MIN_DIFFERENT_FRACTION * side * side)))
    return images[keep].astype(np.int8), [labels[i] for i in keep]


@lru_cache(maxsize=None)
def _glyph_set(side: int) -> tuple[np.ndarray, tuple[str, ...]]:
    path = _cache_dir() / f"glyphs_{side}_v{_GLYPH_CACHE_VERSION}.npz"
    if path.exists():
        with np.load(path) as stored:
            return stored["images"], tuple(str(s) for s in stored["labels"])
    images, labels = _build_glyph_set(side)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, images=images, labels=np.asarray(labels))
        os.replace(tmp, path)  # atomic: parallel test workers never read a half-written file
    except OSError:
        pass  # a read-only home still works, just without the cache
    return images, tuple(labels)


def glyph_images(*, dtype=jnp.float32) -> jax.Array:
    """The offline image set: distinct 48×48 binary glyphs as ±1 vectors, shape ``(P, 2304)``.

    Glyphs of the bold DejaVu fonts shipped with matplotlib (ASCII, Greek, Cyrillic, arrows,
    mathematical operators) are cropped to their ink, scaled to fill the frame and thickened by
    one pixel; +1 is ink, −1 background. A greedy filter then keeps only images that differ from
    every earlier one (and from its inverse) in at least 5% of pixels, so P ≥ 1,000 distinct
    patterns remain. Built once (a few seconds) and cached under ``$AMTUTOR_CACHE`` or
    ``~/.cache/amtutor``. Deterministic: the same images in the same order on every machine with
    the same matplotlib fonts.
    """
    dtype = _check_dtype(dtype, pm1=True)
    images, _ = _glyph_set(IMAGE_SIDE)
    return jnp.asarray(images, dtype=dtype)


def glyph_labels() -> tuple[str, ...]:
    """Labels of :func:`glyph_images`, e.g. ``'A U+0041 DejaVuSans-Bold'``, in the same order."""
    return _glyph_set(IMAGE_SIDE)[1]


def digit_images(*, upscale: int = 1, dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
    """scikit-learn's 1,797 handwritten digits, binarised to ±1 (ink is +1).

    Each 8×8 image has 16 grey levels; a pixel is ink when its level is at least 8 (half way).

    Args:
        upscale: repeat each pixel ``upscale`` times along both axes (e.g. 6 gives 48×48).

    Returns:
        ``(images, labels)`` with shapes ``(1797, (8*upscale)**2)`` and ``(1797,)``.
    """
    from sklearn.datasets import load_digits

    upscale = check_int("upscale", upscale, minimum=1)
    dtype = _check_dtype(dtype, pm1=True)
    digits = load_digits()
    img = np.where(digits.images >= 8, 1.0, -1.0)
    img = img.repeat(upscale, axis=1).repeat(upscale, axis=2)
    return jnp.asarray(img.reshape(len(img), -1), dtype=dtype), jnp.asarray(digits.target)


TRAIN_PHOTOGRAPHS = ("astronaut", "brick", "cat", "cell", "chelsea", "clock", "coins", "colorwheel", "gravel",
                     "hubble_deep_field", "immunohistochemistry", "microaneurysms", "moon", "page", "retina",
                     "rocket", "text", "flower")
"""The 18 photographs the Energy Transformer trains on (scikit-image's, and scikit-learn's flower)."""
HELD_OUT_PHOTOGRAPHS = ("camera", "coffee", "grass", "china")
"""Whole photographs kept out of training, for testing inpainting."""


@lru_cache(maxsize=None)
def _photograph(name: str, scale: float) -> np.ndarray:
    from skimage import color, data as skdata, transform

    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        image = load_sample_image(f"{name}.jpg")
    else:
        image = getattr(skdata, name)()
    image = np.asarray(image)
    if image.ndim == 3:
        image = color.rgb2gray(image[..., :3])
    image = image.astype(np.float64)
    if image.max() > 1.0:
        image = image / 255.0
    if scale != 1.0:
        image = transform.rescale(image, scale, anti_aliasing=True)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def photographs(names=None, *, scale: float = 0.5) -> dict[str, np.ndarray]:
    """Grayscale photographs shipped with scikit-image and scikit-learn (offline), as float32 in [0, 1].

    Args:
        names: which photographs (default: :data:`TRAIN_PHOTOGRAPHS` + :data:`HELD_OUT_PHOTOGRAPHS`).
        scale: rescaling factor in (0, 1] (anti-aliased); the Energy Transformer uses 0.5.

    Returns ``{name: (H, W) array}``. Needs scikit-image.
    """
    known = TRAIN_PHOTOGRAPHS + HELD_OUT_PHOTOGRAPHS
    names = known if names is None else names
    if isinstance(names, str) or not all(isinstance(n, str) for n in names) or not len(names):
        raise TypeError(f"names must be a non-empty list of photograph names from {known}, got {names!r}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"names: unknown photographs {unknown}; known: {known}")
    scale = float(check_probability("scale", scale, open_low=True))
    return {n: _photograph(n, scale) for n in names}


def random_crops(images, size: int, count: int, *, key, flip: bool = False) -> jax.Array:
    """``count`` random ``size``×``size`` crops, each from an image drawn uniformly from ``images`` (a
    list or dict of 2-D arrays at least ``size`` on each side); with ``flip``, each crop is mirrored
    left-right with probability ½. Deterministic for a given ``key``. Returns ``(count, size, size)``."""
    images = list(images.values()) if isinstance(images, dict) else list(images)
    if not images:
        raise ValueError("images must hold at least one image")
    size = check_int("size", size, minimum=1)
    count = check_int("count", count, minimum=1, maximum=10**7)
    check_key("key", key)
    arrays = []
    for i, image in enumerate(images):
        image = np.asarray(as_array(f"images[{i}]", image, ndim=2), np.float32)
        if min(image.shape) < size:
            raise ValueError(f"images[{i}] of shape {image.shape} is smaller than the crop size {size}")
        if not np.isfinite(image).all():
            raise ValueError(f"images[{i}] must be finite (no NaN or infinity)")
        arrays.append(image)
    k_img, k_row, k_col, k_flip = jax.random.split(key, 4)
    which = np.asarray(jax.random.randint(k_img, (count,), 0, len(arrays)))
    u_row, u_col = np.asarray(jax.random.uniform(k_row, (count,))), np.asarray(jax.random.uniform(k_col, (count,)))
    flips = np.asarray(jax.random.bernoulli(k_flip, 0.5, (count,))) if flip else np.zeros(count, bool)
    out = np.empty((count, size, size), np.float32)
    for j in range(count):
        image = arrays[which[j]]
        r = int(u_row[j] * (image.shape[0] - size + 1))
        c = int(u_col[j] * (image.shape[1] - size + 1))
        crop = image[r:r + size, c:c + size]
        out[j] = crop[:, ::-1] if flips[j] else crop
    return jnp.asarray(out)
