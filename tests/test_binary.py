"""amtutor.binary: energies, asynchronous/synchronous dynamics, fixed points, input checks."""

import collections
import contextlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from amtutor import binary, data

SEPARATIONS = [
    binary.quadratic(),
    binary.power(3),
    binary.power(4),
    binary.rectified_power(6),
    binary.exponential(1.0),
    binary.log_sum_exp(0.5),
    binary.log_sum_exp(1e4),  # the energy must stay stable at very large beta
]


def random_problem(seed, k, d, noise=0.3):
    keys = jax.random.split(jax.random.key(seed), 3)
    memories = data.binary_patterns(k, d, key=keys[0])
    query = data.flip_bits(memories[0], noise, key=keys[1])
    return memories, query, keys[2]


# ---------------------------------------------------------------- energies


@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 8), d=st.integers(2, 60))
def test_quadratic_energy_equals_hebbian_quadratic_form(seed, k, d):
    memories, state, _ = random_problem(seed, k, d)
    direct = binary.energy(memories, state, binary.quadratic())
    via_matrix = binary.hopfield_energy(binary.hebbian_weights(memories), state)
    # Both are sums of integers below 2^24 computed in float32: exact.
    assert float(direct) == float(via_matrix)


def test_energy_definitions():
    memories, state, _ = random_problem(0, 5, 30)
    m = np.asarray(memories @ state, dtype=np.float64)
    np.testing.assert_allclose(binary.energy(memories, state, binary.power(3)), -np.sum(m**3) / 3, rtol=1e-6)
    np.testing.assert_allclose(
        binary.energy(memories, state, binary.rectified_power(3)), -np.sum(np.maximum(m, 0) ** 3) / 3, rtol=1e-6
    )
    beta = 0.7
    lse = np.log(np.sum(np.exp(beta * m))) / beta
    np.testing.assert_allclose(binary.energy(memories, state, binary.log_sum_exp(beta)), -lse, rtol=1e-5)
    # exponential is -sum exp(beta m) rescaled by exp(-beta D)
    np.testing.assert_allclose(
        binary.energy(memories, state, binary.exponential(beta)), -np.sum(np.exp(beta * (m - 30))), rtol=1e-5
    )


def test_log_sum_exp_is_stable_at_huge_beta():
    memories, state, key = random_problem(1, 50, 2304 // 8)
    e = binary.energy(memories, memories[3], binary.log_sum_exp(1e4))
    # At beta -> infinity the log-sum-exp energy tends to -max_mu m_mu = -D.
    np.testing.assert_allclose(float(e), -memories.shape[1], rtol=1e-6)
    r = binary.async_recall(memories, state, binary.log_sum_exp(1e4), key=key)
    assert bool(jnp.all(jnp.isfinite(r.energies)))


def test_energy_is_batched():
    memories, _, _ = random_problem(2, 4, 20)
    batch = memories[:3]
    e = binary.energy(memories, batch, binary.power(3))
    assert e.shape == (3,)
    np.testing.assert_allclose(e[1], binary.energy(memories, batch[1], binary.power(3)))


def test_inverted_state_has_the_same_classical_energy():
    memories, state, _ = random_problem(3, 6, 40)
    assert float(binary.energy(memories, -state, binary.quadratic())) == float(
        binary.energy(memories, state, binary.quadratic())
    )


# ---------------------------------------------------------------- asynchronous dynamics


@given(
    seed=st.integers(0, 2**31 - 1),
    k=st.integers(1, 12),
    d=st.integers(4, 48),
    which=st.integers(0, len(SEPARATIONS) - 1),
)
def test_energy_never_increases_along_async_dynamics(seed, k, d, which):
    memories, query, key = random_problem(seed, k, d, noise=0.4)
    sep = SEPARATIONS[which]
    r = binary.async_recall(memories, query, sep, key=key, sweeps=3)
    energies = np.asarray(r.energies, dtype=np.float64)  # starts with the query's energy
    assert energies.shape == (3 * d + 1,)
    np.testing.assert_allclose(energies[0], binary.energy(memories, query, sep), rtol=1e-6)
    # A flip is accepted only when it lowers the energy; the recomputed float32 energy may wobble
    # by rounding only (relative 1e-6 of its size, about 8 float32 ulps).
    tolerance = 1e-6 * np.maximum(np.abs(energies[:-1]), 1.0)
    assert np.all(np.diff(energies) <= tolerance)


def slow_async_recall(memories, query, separation, order):
    """Reference: recompute the full energy for both signs of each visited neuron (O(KD) a step)."""
    state = np.array(query, dtype=np.float32)
    for site in np.asarray(order):
        flipped = state.copy()
        flipped[site] = -flipped[site]
        e_now = float(binary.energy(memories, state, separation))
        e_flip = float(binary.energy(memories, flipped, separation))
        if e_flip < e_now:
            state = flipped
    return state


@pytest.mark.parametrize("sep", [binary.quadratic(), binary.power(3), binary.rectified_power(4), binary.log_sum_exp(2.0)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_async_recall_matches_slow_reference(sep, seed):
    memories, query, key = random_problem(seed, 5, 16, noise=0.45)
    steps = 3 * 16
    fast = binary.async_recall(memories, query, sep, key=key, steps=steps)
    # The same visiting order as async_recall uses for a single query.
    order = binary.site_order(jax.random.split(key, 1)[0], steps, 16)
    np.testing.assert_array_equal(fast.final, slow_async_recall(memories, query, sep, order))


def test_stored_patterns_are_fixed_points_below_capacity():
    # K = 10 random patterns in D = 400 is far below 0.138 D = 55: every pattern is stable
    # (with these seeds; the probability of any unstable bit is ~ D*K*P(z > sqrt(D/K)) ~ 1e-7).
    memories = data.binary_patterns(10, 400, key=jax.random.key(0))
    assert bool(jnp.all(binary.is_fixed_point(memories, memories, binary.quadratic())))
    # Polynomial n = 3 stores K = 200 patterns in D = 100 (K_max ~ D^2 / (3 * 2.6^2) ~ 500).
    memories = data.binary_patterns(200, 100, key=jax.random.key(1))
    assert bool(jnp.all(binary.is_fixed_point(memories, memories, binary.power(3))))
    r = binary.async_recall(memories, memories[:5], binary.power(3), key=jax.random.key(2))
    np.testing.assert_array_equal(r.final, memories[:5])
    assert int(jnp.sum(r.flips)) == 0


def test_is_fixed_point_matches_brute_force():
    memories, query, key = random_problem(5, 6, 12, noise=0.4)
    sep = binary.power(3)
    for state in [query, memories[0], -memories[0], binary.async_recall(memories, query, sep, key=key).final]:
        e = float(binary.energy(memories, state, sep))
        stable = True
        for i in range(12):
            flipped = state.at[i].multiply(-1)
            stable &= float(binary.energy(memories, flipped, sep)) >= e
        assert bool(binary.is_fixed_point(memories, state, sep)) == stable


def test_recall_ends_in_a_fixed_point_and_records_snapshots():
    memories, query, key = random_problem(6, 3, 64, noise=0.2)
    r = binary.async_recall(memories, query, binary.quadratic(), key=key, sweeps=4, record_every=32)
    assert r.energies.shape == (257,) and r.snapshots.shape == (9, 64)
    np.testing.assert_array_equal(r.snapshots[0], query)
    np.testing.assert_array_equal(r.snapshots[-1], r.final)
    assert bool(binary.is_fixed_point(memories, r.final, binary.quadratic()))
    # Every changed bit was flipped at least once (a bit may flip back and forth).
    assert int(r.flips) >= int(jnp.sum(r.final != query))


def test_batched_recall_equals_single_recalls():
    memories, _, key = random_problem(7, 4, 40)
    queries = data.flip_bits(memories, 0.2, key=jax.random.key(8))
    batch = binary.async_recall(memories, queries, binary.quadratic(), key=key)
    keys = jax.random.split(key, 4)
    for i in range(4):
        order = binary.site_order(keys[i], 5 * 40, 40)
        single = slow_async_recall(memories, queries[i], binary.quadratic(), order)
        np.testing.assert_array_equal(batch.final[i], single)


def test_exponential_and_log_sum_exp_have_the_same_dynamics():
    memories, query, key = random_problem(9, 20, 50, noise=0.3)
    a = binary.async_recall(memories, query, binary.exponential(0.5), key=key)
    b = binary.async_recall(memories, query, binary.log_sum_exp(0.5), key=key)
    np.testing.assert_array_equal(a.final, b.final)


def test_rectified_power_does_not_retrieve_the_inverse():
    memories, _, key = random_problem(10, 3, 100)
    query = data.flip_bits(-memories[0], 0.1, key=jax.random.key(11))  # close to -ξ¹
    plain = binary.async_recall(memories, query, binary.power(4), key=key).final
    rect = binary.async_recall(memories, query, binary.rectified_power(4), key=key).final
    np.testing.assert_array_equal(plain, -memories[0])
    assert not bool(jnp.all(rect == -memories[0]))


# ---------------------------------------------------------------- synchronous dynamics


def test_sync_update_is_the_standard_form():
    memories, state, _ = random_problem(12, 7, 30)
    m = memories @ state
    field = memories.T @ (m**2)  # f(m) = m^2 for F = m^3 / 3
    expected = jnp.where(field == 0, state, jnp.sign(field))
    np.testing.assert_array_equal(binary.sync_update(memories, state, binary.power(3)), expected)


def test_sync_recall_retrieves_below_capacity():
    memories = data.binary_patterns(5, 200, key=jax.random.key(13))
    query = data.flip_bits(memories[2], 0.15, key=jax.random.key(14))
    np.testing.assert_array_equal(binary.sync_recall(memories, query, binary.quadratic(), steps=5), memories[2])


# ---------------------------------------------------------------- separations are pytrees


@contextlib.contextmanager
def count_traces():
    """Count how often each jitted function is traced (each trace is one compilation)."""
    counts = collections.Counter()

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/jaxpr_trace_duration":
            counts[kwargs.get("fun_name")] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counts
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def test_custom_separations_with_the_same_name_do_not_collide():
    # Regression: separations used to be static jit arguments hashed on their name, so the second
    # "myF" reused the first one's compiled code and returned -8 instead of -64.
    memories, state = jnp.ones((1, 4)), jnp.ones(4)
    half_square = binary.sum_of(lambda x: x**2 / 2, name="myF")
    quartic = binary.sum_of(lambda x: x**4 / 4, name="myF")
    assert float(binary.energy(memories, state, half_square)) == -8.0
    assert float(binary.energy(memories, state, quartic)) == -64.0
    assert half_square.name == quartic.name == "myF"
    r = binary.async_recall(memories, state.at[3].set(-1.0), quartic, key=jax.random.key(0), steps=4)
    np.testing.assert_array_equal(r.final, state)
    assert float(r.energies[0]) == -4.0 and float(r.energies[-1]) == -64.0


def test_sum_of_matches_the_built_in_powers():
    memories, query, key = random_problem(20, 6, 24, noise=0.3)
    for n, builtin in [(2, binary.quadratic()), (3, binary.power(3))]:
        custom = binary.sum_of(lambda x, n=n: x**n / n)
        assert float(binary.energy(memories, query, custom)) == float(binary.energy(memories, query, builtin))
        np.testing.assert_array_equal(binary.async_recall(memories, query, custom, key=key).final,
                                      binary.async_recall(memories, query, builtin, key=key).final)
    assert binary.sum_of(jnp.square).name == "square"


def test_a_new_beta_does_not_recompile():
    memories, query, key = random_problem(21, 7, 26)  # shapes used by no other test
    with count_traces() as counts:
        for beta in [0.5, 2.0, 8.0]:
            binary.energy(memories, query, binary.log_sum_exp(beta)).block_until_ready()
            binary.async_recall(memories, query, binary.log_sum_exp(beta), key=key).final.block_until_ready()
            binary.is_fixed_point(memories, query, binary.exponential(beta)).block_until_ready()
    assert counts["_energy"] == 1 and counts["_async_batch"] == 1 and counts["_is_fixed_point"] == 1
    # ... while a different power is a different program (n is static).
    with count_traces() as counts:
        for n in [3, 4]:
            binary.energy(memories, query, binary.power(n)).block_until_ready()
    assert counts["_energy"] == 2


def test_beta_is_a_float32_leaf_and_differentiable():
    sep = binary.log_sum_exp(2)
    assert isinstance(sep.beta, jax.Array) and sep.beta.dtype == jnp.float32
    assert jax.tree_util.tree_leaves(binary.power(3)) == []  # n is static
    memories, query, _ = random_problem(22, 5, 20)

    def e(beta):
        return binary.energy(memories, query, binary.log_sum_exp(beta))

    grad = jax.grad(e)(jnp.float32(0.5))  # through the public energy: a learnable beta
    expected = (e(0.5 + 1e-2) - e(0.5 - 1e-2)) / 2e-2
    np.testing.assert_allclose(grad, expected, rtol=1e-2)
    assert isinstance(eqx.filter_grad(lambda s: binary.energy(memories, query, s))(sep).beta, jax.Array)
    assert binary.log_sum_exp(2.0).name == "log-sum-exp beta=2"
    assert binary.exponential(0.5).name == "exponential beta=0.5"


def test_separations_hash_by_value_for_static_use():
    # Code that still passes a separation as a static jit argument needs a hash consistent with ==.
    assert hash(binary.log_sum_exp(2.0)) == hash(binary.log_sum_exp(2.0))
    assert bool(binary.log_sum_exp(2.0) == binary.log_sum_exp(2.0))
    assert not bool(binary.log_sum_exp(2.0) == binary.log_sum_exp(3.0))
    assert binary.power(3) == binary.power(3) and binary.power(3) != binary.power(4)
    assert binary.sum_of(jnp.square) != binary.sum_of(lambda x: x**2)


def test_async_recall_in_order_is_async_recall():
    memories, query, key = random_problem(23, 5, 16, noise=0.4)
    order = binary.site_order(jax.random.split(key, 1)[0], 48, 16)
    a = binary.async_recall(memories, query, binary.power(3), key=key, steps=48, record_every=16)
    b = binary.async_recall_in_order(memories, query, binary.power(3), order, record_every=16)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    sweep = binary.async_recall_in_order(memories, query, binary.power(3), jnp.arange(16))
    assert sweep.energies.shape == (17,) and sweep.snapshots.shape == (2, 16)


# ---------------------------------------------------------------- bad input

MEM = jnp.array([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]])
KEY = jax.random.key(0)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: binary.energy(MEM, jnp.array([1.0, 0.0, 1.0]), binary.quadratic()), ValueError, "state must contain only"),
        (lambda: binary.energy(jnp.array([[1.0, 2.0, 1.0]]), jnp.ones(3), binary.quadratic()), ValueError, "memories must contain only"),
        (lambda: binary.energy(MEM, jnp.ones(4), binary.quadratic()), ValueError, "state has 4 neurons but memories have D = 3"),
        (lambda: binary.energy(jnp.zeros((0, 3)), jnp.ones(3), binary.quadratic()), ValueError, "memories is empty"),
        (lambda: binary.energy(MEM, jnp.array([1.0, jnp.nan, 1.0]), binary.quadratic()), ValueError, "state must contain only"),
        (lambda: binary.energy(MEM[0], jnp.ones(3), binary.quadratic()), ValueError, "memories must be 2-D"),
        (lambda: binary.energy(MEM, jnp.ones(3), "quadratic"), TypeError, "separation must be"),
        (lambda: binary.power(1), ValueError, "n must be >= 2"),
        (lambda: binary.power(2.5), TypeError, "n must be an integer"),
        (lambda: binary.rectified_power(0), ValueError, "n must be >= 2"),
        (lambda: binary.log_sum_exp(0.0), ValueError, "beta must be > 0"),
        (lambda: binary.log_sum_exp(-1.0), ValueError, "beta must be > 0"),
        (lambda: binary.exponential(float("nan")), ValueError, "beta must be finite"),
        (lambda: binary.async_recall(MEM, jnp.ones(3), binary.quadratic(), key=1), TypeError, "key must be a JAX PRNG key"),
        (lambda: binary.async_recall(MEM, jnp.ones(3), binary.quadratic(), key=KEY, steps=0), ValueError, "steps must be >= 1"),
        (lambda: binary.async_recall(MEM, jnp.ones(3), binary.quadratic(), key=KEY, steps=3, sweeps=1), ValueError, "either steps or sweeps"),
        (lambda: binary.async_recall(MEM, jnp.ones(3), binary.quadratic(), key=KEY, steps=5, record_every=2), ValueError, "must divide steps"),
        (lambda: binary.hopfield_energy(jnp.ones((3, 2)), jnp.ones(3)), ValueError, "weights must be square"),
        (lambda: binary.sync_recall(MEM, jnp.ones(3), binary.quadratic(), steps=0), ValueError, "steps must be >= 1"),
        (lambda: binary.async_recall(MEM, jnp.ones(3), binary.quadratic(), key=KEY, steps=3, record_every=0), ValueError, "record_every must be >= 1"),
        (lambda: binary.async_recall(MEM, jnp.ones(3), binary.quadratic(), key=KEY, record_every=0), ValueError, "record_every must be >= 1"),
        (lambda: binary.async_recall_in_order(MEM, jnp.ones(3), binary.quadratic(), jnp.array([0.0, 1.0])), TypeError, "order must hold integer"),
        (lambda: binary.async_recall_in_order(MEM, jnp.ones((2, 3)), binary.quadratic(), jnp.arange(3)), ValueError, "query must be 1-D"),
        (lambda: binary.Separation("x", None, None, None), TypeError, "abstract|argument"),
        (lambda: binary.Separation(), TypeError, "abstract"),
        (lambda: binary.sum_of("x**2"), TypeError, "F \\(function\\) must be a function"),
        (lambda: binary.sum_of(jnp.square, name=3), TypeError, "name \\(label\\) must be a string"),
        (lambda: binary.hopfield_energy(jnp.ones((3, 3)), jnp.ones(4)), ValueError, "state has 4 neurons but weights have D = 3"),
    ],
)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_log_sum_exp_separation_is_stable_at_any_large_beta():
    """The score subtracts max(m) before multiplying by β (lagrangians.log_sum_exp), so the stored
    pattern's energy is exactly -D (the top overlap) however large β is, and recall still works:
    a fused β·m − max(β·m) used to put the top term off by up to ±1024 from β ≈ 5e6 on."""
    xi = data.binary_patterns(20, 500, key=jax.random.key(0))
    query = data.flip_bits(xi[0], 0.1, key=jax.random.key(1))
    for beta in (1.0, 1e4, 5e6, 3e7, 1e8, 1e30, 1e38):
        separation = binary.log_sum_exp(beta)
        # -(1/β) log Σ e^{β m} = -(D + log(1 + Σ_{μ>1} e^{β(m_μ - D)})/β) = -D to float32 for β ≥ 1
        assert float(binary.energy(xi, xi[0], separation)) == pytest.approx(-500.0, rel=1e-6)
        recalled = binary.async_recall(xi, query, separation, key=jax.random.key(2)).final
        assert bool(jnp.all(recalled == xi[0])), beta


# ------------------------------------------------------------------ issue 19: large powers


def _exact_flip_gains(memories, state, n):
    """Energy change of flipping each bit under E = −Σ_μ m_μⁿ, in exact Python integers."""
    mem = np.asarray(memories, dtype=np.int64)
    s = np.asarray(state, dtype=np.int64)
    overlaps = [int(v) for v in mem @ s]
    gains = []
    for i in range(len(s)):
        delta = [-2 * int(row[i]) * int(s[i]) for row in mem]
        gains.append(-sum((m + d) ** n - m**n for m, d in zip(overlaps, delta)))
    return np.array([g < 0 for g in gains])  # True where flipping bit i lowers the energy


def test_power_15_at_d_500_decides_flips_exactly():
    """F(m) = m¹⁵ at D = 500 reaches 500¹⁵ ≈ 3e40, beyond float32: the scaled score keeps every
    flip decision exact (checked against integer arithmetic), so stored patterns are fixed points
    and a corrupted cue is repaired. Before the fix: is_fixed_point False and no flips at all."""
    key = jax.random.key(19)
    mem = data.binary_patterns(4, 500, key=key)
    sep = binary.power(15)
    assert bool(binary.is_fixed_point(mem, mem[0], sep))
    cue = data.flip_bits(mem[0], 0.1, key=jax.random.key(1))
    lowers = _exact_flip_gains(mem, cue, 15)
    assert lowers.sum() == 50  # exactly the 10% flipped bits (exact arithmetic)
    recall = binary.async_recall(mem, cue, sep, key=jax.random.key(2), sweeps=2)
    np.testing.assert_array_equal(np.asarray(recall.final), np.asarray(mem[0]))


def test_energy_beyond_float32_is_refused_but_recall_still_runs():
    mem = data.binary_patterns(3, 500, key=jax.random.key(0))
    with pytest.raises(ValueError, match="energy"):
        binary.energy(mem, mem[0], binary.power(30))  # 500³⁰ ≈ 1e81
    recall = binary.async_recall(mem, mem[0], binary.power(30), key=jax.random.key(0), sweeps=1)
    assert np.all(np.isneginf(np.asarray(recall.energies)) | np.isfinite(np.asarray(recall.energies)))
