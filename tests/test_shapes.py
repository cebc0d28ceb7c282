"""The jaxtyping shape annotations are checked at test time.

Every public function states its shapes (``Float[Array, "K D"]`` and so on). Here the library is
imported under jaxtyping's import hook with beartype, in a fresh interpreter, and the happy path of
each module runs: an annotation that disagrees with what a function really takes or returns fails
the test. (The bad-input tests run without the hook on purpose: with it, beartype would answer a
wrong argument before the library's own clear message does.)
"""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    from jaxtyping import install_import_hook

    with install_import_hook("amtutor", "beartype.beartype"):
        import amtutor.binary as binary
        import amtutor.capacity as capacity
        import amtutor.continuous as continuous
        import amtutor.data as data
        import amtutor.hamux as hamux
        import amtutor.lagrangians as L
        import amtutor.learning as learning
        import amtutor.retrieval as retrieval
        import amtutor.statmech as statmech
        import amtutor.statmech_sims as sims

    import jax
    import jax.numpy as jnp

    key = jax.random.key(0)
    memories = data.binary_patterns(6, 16, key=key)
    query = data.flip_bits(memories[0], 0.1, key=jax.random.key(1))
    for lag in (L.Identity(), L.ReLU(), L.RectifiedPower(3), L.Sigmoid(2.0), L.Tanh(2.0),
                L.Exponential(0.5), L.Softmax(3.0), L.LayerNorm(1.5), L.SphericalNorm(2.0)):
        x = jnp.linspace(-1.0, 1.0, 16)
        lag(x), lag.activation(x), lag.dual(x), lag.energy(x)
    L.log_sum_exp(jnp.ones((3, 4)), 2.0, axis=-1)

    graph = hamux.Graph(
        {"v": hamux.Layer(16, L.Tanh(1.0)), "h": hamux.Layer(6, L.Softmax(2.0), tau=0.5),
         "t": hamux.Layer((4, 16), L.LayerNorm(1.0))},
        {"W": hamux.DenseSynapse(memories.T), "M": hamux.MemorySynapse(memories, L.Softmax(4.0)),
         "D": hamux.MemorySynapse(memories, L.Softmax(4.0), similarity="negative_squared_distance"),
         "A": hamux.AttentionSynapse(jnp.ones((2, 3, 16)) * 0.1, jnp.ones((2, 3, 16)) * 0.1)},
        [("W", "v", "h"), ("M", "v"), ("D", "t"), ("A", "t")],
    )
    xs = graph.init(key=key)
    graph.energy(xs), graph.gradient(xs), graph.velocity(xs, {"v": jnp.arange(16) < 3})
    hamux.descend(graph, xs, dt=0.05, steps=4)
    hamux.descend(graph, xs, dt=0.05, steps=4, record_every=None, tol=1e-3)
    hamux.descend(graph, xs, dt=0.05, steps=4, noise=0.1, key=key)
    hamux.solve(graph, xs, t1=0.5, saves=3)

    continuous.tanh_energy(memories, query, binary.power(3), beta=0.5)
    continuous.input_current(memories, jnp.tanh(query), binary.power(3))
    continuous.tanh_descent(memories, query, binary.quadratic(), beta=0.5, steps=3)
    continuous.tanh_ode(memories, query, binary.quadratic(), beta=0.5, t1=1.0, saves=3)
    # trainable parameters are arrays: the hints admit them
    L.Tanh(jnp.array(2.0)), L.LayerNorm(gamma=jnp.array(1.5)), hamux.Layer(3, L.Identity(), tau=jnp.array(0.5))

    for sep in (binary.quadratic(), binary.power(3), binary.log_sum_exp(jnp.array(5.0)),
                binary.exponential(0.5), binary.sum_of(lambda m: m**2 / 2)):
        binary.energy(memories, query, sep)
        binary.async_recall(memories, query, sep, key=key, sweeps=1)
        binary.sync_update(memories, query, sep)
        binary.is_fixed_point(memories, memories[0], sep)
    retrieval.retrieval_rate(memories, 3, binary.quadratic(), flip_fraction=0.1, draws=2, key=key)
    capacity.k_max(100, 3, 2.326), capacity.noise_variance(10, 100, 3)

    statmech.alpha_1(1.0, "spherical"), statmech.rem_free_energy(1.0, 0.2, "gaussian")
    sims.lse_energy(memories, query, 2.0), sims.lse_update(memories, memories[:2], 2.0)
    sims.retrieval_overlaps(1.0, 0.1, 10, ensemble="spherical", trials=4, key=key)

    images = jax.random.normal(key, (6, 16))
    labelled = learning.labelled_memory(images, jnp.arange(6) % 3, num_classes=3)
    learning.classify(labelled, images[0], steps=10)
    print("shapes ok")
    """
)


def test_public_functions_match_their_shape_annotations():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-6000:]
    assert "shapes ok" in result.stdout
