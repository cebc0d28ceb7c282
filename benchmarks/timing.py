"""The one timing helper every benchmark uses (run the benchmarks as scripts from any folder)."""

import time

import jax


def best_time(fn, repeats: int = 3) -> float:
    """Best wall time of ``fn()`` over ``repeats`` runs, after one warm-up run (JAX compiles there).

    Results are blocked on, so asynchronous dispatch does not hide the work.
    """
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)
