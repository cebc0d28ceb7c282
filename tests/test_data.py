"""amtutor.data: ensembles, corruption, offline images."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amtutor import data


def test_binary_patterns_are_pm1_and_deterministic():
    a = data.binary_patterns(5, 100, key=jax.random.key(0))
    b = data.binary_patterns(5, 100, key=jax.random.key(0))
    c = data.binary_patterns(5, 100, key=jax.random.key(1))
    assert a.shape == (5, 100) and a.dtype == jnp.float32
    assert set(np.unique(a)) == {-1.0, 1.0}
    assert jnp.array_equal(a, b) and not jnp.array_equal(a, c)


def test_binary_patterns_are_balanced():
    # 200,000 fair ±1 entries: the mean has standard error 1/sqrt(2e5) = 0.0022; 0.01 is 4.5 SE.
    x = data.binary_patterns(200, 1000, key=jax.random.key(3))
    assert abs(float(x.mean())) < 0.01


def test_gaussian_and_spherical_patterns():
    g = data.gaussian_patterns(400, 50, key=jax.random.key(0))
    # 20,000 N(0,1) entries: SE of the variance is sqrt(2/2e4) = 0.01; 0.05 is 5 SE.
    assert abs(float(g.var()) - 1.0) < 0.05
    s = data.spherical_patterns(10, 64, key=jax.random.key(0))
    np.testing.assert_allclose(jnp.sum(s**2, axis=1), 64.0, rtol=1e-5)


def test_flip_bits_flips_exactly_the_requested_number():
    x = data.binary_patterns(1, 200, key=jax.random.key(0))[0]
    y = data.flip_bits(x, 0.2, key=jax.random.key(1))
    assert int(jnp.sum(x != y)) == 40
    batch = data.flip_bits(jnp.stack([x, x]), 0.25, key=jax.random.key(2))
    assert batch.shape == (2, 200)
    assert list(np.asarray(jnp.sum(batch != x, axis=1))) == [50, 50]
    assert not jnp.array_equal(batch[0], batch[1])  # each row gets its own flips
    assert jnp.array_equal(data.flip_bits(x, 0.0, key=jax.random.key(3)), x)
    assert jnp.array_equal(data.flip_bits(x, 1.0, key=jax.random.key(3)), -x)


def test_glyph_images_are_many_distinct_and_binary():
    images = np.asarray(data.glyph_images())
    labels = data.glyph_labels()
    assert images.shape[1] == data.IMAGE_SIDE**2 == 2304
    assert images.shape[0] >= 1000 and len(labels) == images.shape[0]
    assert set(np.unique(images)) == {-1.0, 1.0}
    # No near-duplicates: any two images (or one and the other's inverse) differ in >= 5% of pixels.
    overlaps = np.abs(images @ images.T)
    np.fill_diagonal(overlaps, 0)
    hamming = (images.shape[1] - overlaps) / 2
    assert hamming.min() >= 0.05 * images.shape[1]
    # Not mostly background: a fair share of ink per image on average.
    assert 0.25 < float((images > 0).mean()) < 0.6


def test_glyph_images_are_deterministic_from_scratch(tmp_path, monkeypatch):
    # Rebuilding in an empty cache reproduces the cached set exactly.
    cached = np.asarray(data.glyph_images())
    monkeypatch.setenv("AMTUTOR_CACHE", str(tmp_path))
    data._glyph_set.cache_clear()
    try:
        rebuilt = np.asarray(data.glyph_images())
        assert (tmp_path / f"glyphs_48_v{data._GLYPH_CACHE_VERSION}.npz").exists()
    finally:
        data._glyph_set.cache_clear()
    np.testing.assert_array_equal(rebuilt, cached)


def test_digit_images():
    images, labels = data.digit_images()
    assert images.shape == (1797, 64) and labels.shape == (1797,)
    assert set(np.unique(images)) == {-1.0, 1.0}
    big, _ = data.digit_images(upscale=6)
    assert big.shape == (1797, 2304)
    np.testing.assert_array_equal(big.reshape(-1, 48, 48)[:, ::6, ::6], images.reshape(-1, 8, 8))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: data.binary_patterns(0, 10, key=jax.random.key(0)), ValueError, "num_patterns must be >= 1"),
        (lambda: data.binary_patterns(3, 10.5, key=jax.random.key(0)), TypeError, "dim must be an integer"),
        (lambda: data.binary_patterns(3, 10, key=0), TypeError, "key must be a JAX PRNG key"),
        (lambda: data.flip_bits(jnp.array([1.0, 0.0]), 0.1, key=jax.random.key(0)), ValueError, "pattern must contain only"),
        (lambda: data.flip_bits(jnp.ones(4), 1.5, key=jax.random.key(0)), ValueError, r"fraction must lie in \[0.0, 1.0\]"),
        (lambda: data.flip_bits(jnp.ones(4), float("nan"), key=jax.random.key(0)), ValueError, "fraction must be finite"),
        (lambda: data.flip_bits(jnp.ones((2, 2, 2)), 0.1, key=jax.random.key(0)), ValueError, "pattern must be 1-D or 2-D"),
        (lambda: data.flip_bits("abc", 0.1, key=jax.random.key(0)), TypeError, "pattern must be an array"),
        (lambda: data.digit_images(upscale=0), ValueError, "upscale must be >= 1"),
    ],
)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


KEY = jax.random.key(0)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: data.binary_patterns(2, 3, key=KEY, dtype="foo"), TypeError, "dtype must be a dtype such as jnp.float32, got 'foo'"),
        (lambda: data.gaussian_patterns(2, 3, key=KEY, dtype="foo"), TypeError, "dtype must be a dtype"),
        (lambda: data.digit_images(dtype="foo"), TypeError, "dtype must be a dtype"),
        (lambda: data.binary_patterns(2, 3, key=KEY, dtype=jnp.uint8), ValueError, "dtype uint8 cannot hold ±1 patterns"),
        (lambda: data.binary_patterns(2, 3, key=KEY, dtype=bool), ValueError, "dtype bool cannot hold ±1 patterns"),
        (lambda: data.binary_patterns(2, 3, key=KEY, dtype=jnp.complex64), ValueError, "dtype complex64 cannot hold ±1"),
        (lambda: data.glyph_images(dtype=jnp.uint8), ValueError, "dtype uint8 cannot hold ±1 patterns"),
        (lambda: data.digit_images(dtype=bool), ValueError, "dtype bool cannot hold ±1 patterns"),
        (lambda: data.gaussian_patterns(2, 3, key=KEY, dtype=jnp.int32), ValueError, "dtype must be a real float dtype"),
        (lambda: data.spherical_patterns(2, 3, key=KEY, dtype=jnp.uint8), ValueError, "dtype must be a real float dtype"),
        (lambda: data.gaussian_patterns(2, 3, key=KEY, dtype=jnp.complex64), ValueError, "dtype must be a real float dtype"),
        (lambda: data.flip_bits(jnp.ones(4, jnp.complex64), 0.5, key=KEY), TypeError, "pattern must hold real numbers, got complex"),
        (lambda: data.binary_patterns(2, 3, key=jax.random.split(KEY, 2)), ValueError,
         "key must be one key, not a batch of keys: got a key array of shape \\(2,\\)"),
        (lambda: data.flip_bits(jnp.ones(4), 0.5, key=jax.random.split(jax.random.PRNGKey(0), 3)), ValueError,
         "key must be one key, not a batch of keys: got raw uint32 keys of shape \\(3, 2\\)"),
    ],
)
def test_bad_dtypes_keys_and_complex_input(call, error, message):
    """dtype='foo' was numpy's 'data type not understood'; uint8 mapped −1 to 255, bool made every
    entry True; complex patterns lost their imaginary part; a batch of keys failed inside JAX."""
    with pytest.raises(error, match=message):
        call()


def test_dtypes_that_hold_pm1_and_low_precision_input():
    for dtype in (jnp.int8, jnp.int32, jnp.float16, jnp.bfloat16, jnp.float32):
        p = data.binary_patterns(4, 6, key=KEY, dtype=dtype)
        assert p.dtype == dtype and set(np.unique(np.asarray(p, np.float32))) <= {-1.0, 1.0}
    assert data.gaussian_patterns(2, 3, key=KEY, dtype=jnp.bfloat16).dtype == jnp.bfloat16
    # float16 / bfloat16 ±1 input is accepted and computed in float32 (bfloat16 was "must hold numbers")
    for dtype in (jnp.float16, jnp.bfloat16):
        flipped = data.flip_bits(jnp.ones(8, dtype), 0.25, key=KEY)
        assert flipped.dtype == jnp.float32 and int(jnp.sum(flipped == -1)) == 2
    # raw uint32[2] keys and new-style keys both still work
    assert data.binary_patterns(1, 3, key=jax.random.PRNGKey(1)).shape == (1, 3)
