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
        import amtutor.retrieval as retrieval
        import amtutor.statmech as statmech

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
    print("shapes ok")
    """
)


def test_public_functions_match_their_shape_annotations():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-6000:]
    assert "shapes ok" in result.stdout
