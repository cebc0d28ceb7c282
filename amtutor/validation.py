"""Input checks shared by the public API.

Every public function of :mod:`amtutor` checks its arguments here, *before* anything is traced by
JAX, so that a student who passes the wrong thing gets one clear ``ValueError`` or ``TypeError``
naming the argument, instead of a silent NaN or a page of tracer internals.

The checks run on concrete values only. Inside ``jit`` (where values are tracers) they check what
can be checked (shape, dtype) and skip the value checks.
"""

from __future__ import annotations

import numbers

import jax
import numpy as np

__all__ = [
    "as_array",
    "as_float_array",
    "check_fits_float",
    "check_finite",
    "check_pm1",
    "check_positive",
    "check_real",
    "check_int",
    "check_key",
    "check_ndim",
    "check_probability",
]


def _is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _is_low_precision_float(dtype) -> bool:
    return jax.dtypes.issubdtype(dtype, jax.numpy.inexact) and not jax.dtypes.issubdtype(
        dtype, jax.numpy.complexfloating) and np.dtype(dtype).itemsize < 4


def as_array(name: str, x, *, ndim: int | tuple[int, ...] | None = None):
    """Return ``x`` as an array, or raise ``TypeError`` naming ``name`` if it is not array-like.

    Dtype rules: integers, booleans and real floats are accepted (bfloat16 included); complex numbers
    are refused (their imaginary part would be dropped silently); float16 and bfloat16 come back as
    float32, the precision the library computes in (float16 overflows at 65504 and rounds ±1 sums).
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        try:
            x = np.asarray(x)
        except Exception as err:  # ragged lists and the like
            raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from err
    dtype = x.dtype
    if jax.dtypes.issubdtype(dtype, jax.numpy.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got complex dtype {dtype}: "
                        "pass x.real or abs(x) explicitly")
    if not (jax.dtypes.issubdtype(dtype, jax.numpy.number) or jax.dtypes.issubdtype(dtype, jax.numpy.inexact)
            or jax.dtypes.issubdtype(dtype, jax.numpy.bool_)):
        raise TypeError(f"{name} must hold numbers, got dtype {dtype}")
    if _is_low_precision_float(dtype):
        x = np.asarray(x, np.float32) if isinstance(x, np.ndarray) else jax.numpy.asarray(x, jax.numpy.float32)
    if ndim is not None:
        check_ndim(name, x, ndim)
    return x


def check_fits_float(name: str, x, dtype=None) -> None:
    """Raise ``ValueError`` if a concrete, finite ``x`` has values beyond the largest number of
    ``dtype`` (default: JAX's default float, float32 unless x64 is enabled), which would turn into
    ±inf when the library casts it (float64 1e39 is finite, float32 1e39 is inf)."""
    if _is_tracer(x):
        return
    dtype = jax.dtypes.canonicalize_dtype(jax.numpy.result_type(float) if dtype is None else dtype)
    limit = float(jax.numpy.finfo(dtype).max)
    values = np.asarray(x)
    if values.size == 0 or not np.issubdtype(values.dtype, np.number):
        return
    worst = float(np.max(np.abs(values.astype(np.float64))))
    if np.isfinite(worst) and worst > limit:
        raise ValueError(f"{name} has a value of magnitude {worst:.3g}, beyond the largest {dtype} "
                         f"({limit:.3g}): it would become inf; rescale it (or enable float64)")


def as_float_array(name: str, x, *, ndim: int | tuple[int, ...] | None = None):
    """``x`` as a JAX float array, after :func:`as_array` and, on concrete values, checking it is
    finite and fits the dtype it becomes. Floats keep their (JAX-canonical) dtype: float32 stays
    float32, float64 becomes float32 unless x64 is enabled; integers and booleans become JAX's
    default float (low-precision floats are already float32, see :func:`as_array`)."""
    x = as_array(name, x, ndim=ndim)
    if jax.numpy.issubdtype(x.dtype, jax.numpy.floating):
        dtype = jax.dtypes.canonicalize_dtype(x.dtype)
    else:
        dtype = jax.numpy.result_type(float)
    check_finite(name, x)
    check_fits_float(name, x, dtype)
    return jax.numpy.asarray(x, dtype=dtype)


def check_ndim(name: str, x, ndim: int | tuple[int, ...]) -> None:
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name} must be {want}, got shape {tuple(x.shape)}")


def check_finite(name: str, x) -> None:
    """Raise ``ValueError`` if a concrete array holds NaN or infinity."""
    if _is_tracer(x):
        return
    if not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} contains NaN or infinite values")


def check_pm1(name: str, x) -> None:
    """Raise ``ValueError`` unless every entry of ``x`` is exactly +1 or -1."""
    if x.size == 0:
        raise ValueError(f"{name} is empty: expected at least one ±1 entry")
    if _is_tracer(x):
        return
    values = np.asarray(x)
    bad = ~((values == 1) | (values == -1))
    if np.any(bad):
        example = values[bad].flat[0]
        raise ValueError(
            f"{name} must contain only +1 and -1 (binary ±1 states), found {example!r}; "
            "convert {0,1} data with 2*x-1"
        )


def _check_real(name: str, value):
    """Check ``value`` is one finite real number; return it *without* converting an array to a float.

    Arrays stay arrays so that a parameter given as ``jnp.array(2.0)`` remains a pytree leaf that
    ``jax.grad``/``optax`` can train and ``jit`` traces (a Python float would be baked into the
    compiled code, one compilation per value). Python and NumPy scalars come back as ``float``.
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray, jax.Array)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if _is_tracer(value):
        return value
    if np.ndim(value) != 0:
        raise TypeError(f"{name} must be a single number, got an array of shape {np.shape(value)}")
    if isinstance(value, (np.ndarray, jax.Array)) and not (
        jax.numpy.issubdtype(value.dtype, jax.numpy.floating) or jax.numpy.issubdtype(value.dtype, jax.numpy.integer)
    ):
        raise TypeError(f"{name} must be a real number, got an array of dtype {value.dtype}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    return value if isinstance(value, jax.Array) else number


def check_real(name: str, value):
    """Return ``value`` after checking it is one finite real number (any sign; arrays stay arrays)."""
    return _check_real(name, value)


def _concrete(value) -> float:
    return float(value)


def check_positive(name: str, value, *, allow_zero: bool = False):
    """Return ``value`` after checking it is a finite number > 0 (or >= 0).

    Python numbers come back as ``float``; a JAX array comes back unchanged (see :func:`_check_real`).
    """
    value = _check_real(name, value)
    if _is_tracer(value):
        return value
    number = _concrete(value)
    if number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {number}")
    return value


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None,
              why: str = "") -> int:
    """Return ``value`` as an int after checking it is an integer in [``minimum``, ``maximum``].

    ``why`` (e.g. ``"(memory)"``) is appended to the message when ``maximum`` is exceeded.
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum:,}{' ' + why if why else ''}, got {value:,}")
    return value


def check_probability(name: str, value, *, low: float = 0.0, high: float = 1.0,
                      open_low: bool = False, open_high: bool = False):
    """Return ``value`` after checking it lies in the stated interval (arrays stay arrays)."""
    value = _check_real(name, value)
    if _is_tracer(value):
        return value
    number = _concrete(value)
    too_low = number <= low if open_low else number < low
    too_high = number >= high if open_high else number > high
    if too_low or too_high:
        lb = "(" if open_low else "["
        rb = ")" if open_high else "]"
        raise ValueError(f"{name} must lie in {lb}{low}, {high}{rb}, got {number}")
    return value


def check_key(name: str, key) -> None:
    """Raise unless ``key`` is one JAX PRNG key (new-style of shape ``()``, or raw uint32[2]).

    ``TypeError`` for anything that is not a key; ``ValueError`` for a batch of keys (such as
    ``jax.random.split(key, 3)``): the library's random functions take one key.
    """
    if isinstance(key, jax.Array):
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            if key.shape == ():
                return
            raise ValueError(
                f"{name} must be one key, not a batch of keys: got a key array of shape {tuple(key.shape)}; "
                f"pass one of them (e.g. {name}[0]) or jax.vmap over the batch")
        if key.dtype == np.uint32 and key.shape == (2,):
            return
        if key.dtype == np.uint32 and key.ndim >= 2 and key.shape[-1] == 2:
            raise ValueError(
                f"{name} must be one key, not a batch of keys: got raw uint32 keys of shape {tuple(key.shape)}; "
                f"pass one of them (e.g. {name}[0]) or jax.vmap over the batch")
    raise TypeError(
        f"{name} must be a JAX PRNG key such as jax.random.key(0), got {type(key).__name__}"
        + (f" with shape {tuple(key.shape)}" if hasattr(key, "shape") else "")
    )


# --------------------------------------------------------------------------------------------
# ±1 patterns and states, separations (shared by binary, retrieval, capacity, continuous)
# --------------------------------------------------------------------------------------------


def _as_float32(x):
    """±1 data may arrive as int8 (the image cache) or ints: compute in float32 (floats stay)."""
    import jax.numpy as jnp

    return jnp.asarray(x) if np.issubdtype(x.dtype, np.floating) else jnp.asarray(x, dtype=jnp.float32)


def check_pm1_memories(name: str, memories):
    """Return ``memories`` as a float array after checking it is 2-D ``(K, D)``, K >= 1, all ±1.

    ``name`` is the argument as the caller calls it (``"memories"``, ``"pool"``, ...).
    """
    memories = as_array(name, memories, ndim=2)
    if memories.shape[0] == 0:
        raise ValueError(f"{name} is empty: store at least one pattern (shape (K, D) with K >= 1)")
    check_pm1(name, memories)
    return _as_float32(memories)


def check_pm1_state(name: str, state, dim: int, *, ndim: int | tuple[int, ...] = (1, 2),
                    against: str = "memories"):
    """Return ``state`` as a float array after checking it is ±1 with ``dim`` neurons on its last axis.

    ``ndim`` lists the allowed numbers of axes (one state ``(D,)`` or a batch ``(B, D)`` by
    default); ``against`` names the argument that fixed ``dim``, for the message.
    """
    state = as_array(name, state, ndim=ndim)
    if state.shape[-1] != dim:
        raise ValueError(
            f"{name} has {state.shape[-1]} neurons but {against} have D = {dim}: shapes must agree "
            f"(got {name} shape {tuple(state.shape)})"
        )
    check_pm1(name, state)
    return _as_float32(state)


def check_separation(name: str, separation):
    """Raise ``TypeError`` unless ``separation`` is an :class:`amtutor.binary.Separation`; return it."""
    from .binary import Separation  # imported here: binary itself imports this module

    if not isinstance(separation, Separation):
        raise TypeError(
            f"{name} must be an amtutor.binary.Separation such as quadratic(), power(3), "
            f"log_sum_exp(beta=50.0) or sum_of(F), got {type(separation).__name__}"
        )
    return separation


__all__ += ["check_pm1_memories", "check_pm1_state", "check_separation"]
