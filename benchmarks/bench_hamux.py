"""Cost of the HAMUX abstraction: `amtutor.hamux.descend` against the same dynamics hand-written as
one fused `lax.scan` (the reference), measured in the same run.

Prints one line per case: case, our time, reference time, ratio (ours / reference).
Run: `.venv/bin/python benchmarks/bench_hamux.py` (CPU by default; a GPU is used when JAX sees one).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp

from amtutor import lagrangians as L
from amtutor.data import binary_patterns
from amtutor.hamux import DenseSynapse, Graph, Layer, MemorySynapse, descend
from timing import best_time




def tanh_denseam(D=2304, K=100, steps=200, batch=16, beta=0.05, dt=0.1):
    xi = binary_patterns(K, D, key=jax.random.key(0)) / D
    graph = Graph({"x": Layer(D, L.Tanh(beta))}, {"M": MemorySynapse(xi, L.RectifiedPower(3))}, [("M", "x")])
    x0 = jax.random.normal(jax.random.key(1), (batch, D))

    ours = jax.jit(jax.vmap(lambda x: descend(graph, {"x": x}, dt=dt, steps=steps, record_every=steps).final["x"]))

    @jax.jit
    def reference(x0):
        def step(x, _):
            m = jnp.tanh(beta * x) @ xi.T
            return x + dt * (jnp.maximum(m, 0) ** 2 @ xi - x), None
        return jax.lax.scan(step, x0, None, length=steps)[0]

    return best_time(lambda: ours(x0), repeats=15), best_time(lambda: reference(x0), repeats=15)


def hierarchical(D=64, K=500, C=10, steps=400, batch=256, beta=0.5, lam=10.0, dt=0.05):
    k = jax.random.split(jax.random.key(2), 3)
    xi = jax.random.rademacher(k[0], (K, D), dtype=jnp.float32)
    onehot = jax.nn.one_hot(jax.random.randint(k[1], (K,), 0, C), C)
    graph = Graph(
        {"image": Layer(D, L.Identity()), "hidden": Layer(K, L.Softmax(beta), tau=0.2), "label": Layer(C, L.Softmax(1.0))},
        {"Xi": DenseSynapse(xi.T), "labels": DenseSynapse(lam * onehot)},
        [("Xi", "image", "hidden"), ("labels", "hidden", "label")],
    )
    images = jax.random.rademacher(k[2], (batch, D), dtype=jnp.float32)

    def one(img):
        xs = {"image": img, "hidden": jnp.zeros(K), "label": jnp.zeros(C)}
        return descend(graph, xs, dt=dt, steps=steps, clamped=("image",), record_every=steps).final["label"]

    ours = jax.jit(jax.vmap(one))

    @jax.jit
    def reference(images):
        def step(state, _):
            h, ell = state
            hh, lh = jax.nn.softmax(beta * h, axis=-1), jax.nn.softmax(ell, axis=-1)
            h_new = h + (dt / 0.2) * (images @ xi.T + lam * lh @ onehot.T - h)
            ell_new = ell + dt * (lam * hh @ onehot - ell)
            return (h_new, ell_new), None
        zeros = (jnp.zeros((images.shape[0], K)), jnp.zeros((images.shape[0], C)))
        return jax.lax.scan(step, zeros, None, length=steps)[0][1]

    return best_time(lambda: ours(images), repeats=15), best_time(lambda: reference(images), repeats=15)


if __name__ == "__main__":
    print(f"device: {jax.devices()[0].platform}")
    for name, case in [("tanh DenseAM D=2304 K=100, 16 states x 200 Euler steps", tanh_denseam),
                       ("image-hidden-label K=500, 256 images x 400 steps (clamped)", hierarchical)]:
        ours, ref = case()
        print(f"{name}: ours {ours * 1e3:.1f} ms, reference {ref * 1e3:.1f} ms, ratio {ours / ref:.2f}")
