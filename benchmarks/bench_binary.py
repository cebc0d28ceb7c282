"""Batched asynchronous recall (amtutor.binary.async_recall) against a straightforward reference.

Case: B = 100 corrupted queries (25% of the bits flipped) recalled against K stored ±1 patterns
(the whole glyph image set, K = 1629, D = 2304, plus random patterns), one sweep = D proposed
flips per query.

* ours: ``async_recall``, which keeps the K overlaps up to date, so a proposed flip costs O(K);
* reference: the textbook loop, which recomputes the energy of the proposed state from scratch
  for every proposed flip (all K overlaps, O(KD)), also compiled with ``jit``/``lax.scan`` and
  vmapped over the queries, so the comparison is about the algorithm, not about Python overhead.

The reference is far too slow to run a whole sweep, so it is timed on its first
``REFERENCE_STEPS`` proposals and extrapolated linearly to the full sweep (its cost per step is
constant: every step does the same O(KD) work). Both are timed after a warm-up call (compilation
excluded), best of ``REPEATS``. Before timing, the two are checked to make the same decisions on
the same visiting order.

Prints one line per case: case, our time, reference time, ratio (reference / ours).
Run: ``python benchmarks/bench_binary.py`` (a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax
import jax.numpy as jnp

from amtutor import binary, data
from timing import best_time

NUM_QUERIES = 100
NOISE = 0.25
REFERENCE_STEPS = 16
REPEATS = 3


@jax.jit
def naive_recall(memories, queries, orders, separation):
    """Asynchronous recall that recomputes the full energy for every proposed flip (O(KD))."""
    dim = memories.shape[1]

    def full_energy(state):
        return separation.energy_from_score(separation.score(memories @ state), dim)

    def one(query, order):
        def propose(carry, site):
            state, e = carry
            proposal = state.at[site].multiply(-1.0)
            e_new = full_energy(proposal)
            accept = e_new < e
            return (jnp.where(accept, proposal, state), jnp.where(accept, e_new, e)), None

        (state, _), _ = jax.lax.scan(propose, (query, full_energy(query)), order)
        return state

    return jax.vmap(one)(queries, orders)




def run_case(name, memories, separation, key):
    num_memories, dim = memories.shape
    steps = dim  # one sweep
    pick, flip, order_key = jax.random.split(key, 3)
    targets = jax.random.choice(pick, num_memories, (NUM_QUERIES,), replace=False)
    queries = data.flip_bits(memories[targets], NOISE, key=flip)
    query_keys = jax.random.split(order_key, NUM_QUERIES)

    # Same decisions on the same visiting order (first REFERENCE_STEPS proposals). The energy
    # comparisons differ in float rounding only (a full energy vs an energy difference), so we
    # check agreement on nearly all queries rather than bit-for-bit.
    orders = jax.vmap(lambda k: binary.site_order(k, steps, dim))(query_keys)[:, :REFERENCE_STEPS]
    ours_short = binary.async_recall(memories, queries, separation, key=order_key, steps=REFERENCE_STEPS).final
    ref_short = naive_recall(memories, queries, orders, separation)
    agree = float(jnp.mean(jnp.all(ours_short == ref_short, axis=1)))

    ours = best_time(lambda: binary.async_recall(memories, queries, separation, key=order_key, steps=steps).final)
    ref_partial = best_time(lambda: naive_recall(memories, queries, orders, separation))
    ref = ref_partial * steps / REFERENCE_STEPS
    final = binary.async_recall(memories, queries, separation, key=order_key, steps=steps).final
    retrieved = int(jnp.all(final == memories[targets], axis=1).sum())
    print(
        f"{name:<58} ours {ours:8.3f} s   reference {ref:9.1f} s (extrapolated from {REFERENCE_STEPS} of "
        f"{steps} steps)   ratio {ref / ours:7.0f}x   [retrieved {retrieved}/{NUM_QUERIES}, "
        f"same decisions on {agree:.0%} of queries]",
        flush=True,
    )


def main():
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}: {NUM_QUERIES} queries, {NOISE:.0%} flipped, one sweep")
    images = data.glyph_images()
    k, d = images.shape
    run_case(f"glyphs K={k} D={d}, log-sum-exp beta=50", images, binary.log_sum_exp(50.0), jax.random.key(0))
    run_case(f"glyphs K={k} D={d}, rectified power n=6", images, binary.rectified_power(6), jax.random.key(1))
    random_patterns = data.binary_patterns(1000, 1024, key=jax.random.key(2))
    run_case("random K=1000 D=1024, log-sum-exp beta=1", random_patterns, binary.log_sum_exp(1.0), jax.random.key(3))


if __name__ == "__main__":
    main()
