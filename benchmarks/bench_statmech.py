"""Speed of the exponential-capacity experiments in `amtutor.statmech`, against straightforward
NumPy/SciPy versions of the same maths measured in the same run:

* rem_success (overlaps drawn directly by inverse-survival sampling, streamed log-sum-exp, early
  stop once every trial has failed) vs. NumPy that draws the P − 1 overlaps of each trial at once
  with scipy.stats.beta and takes scipy.special.logsumexp;
* retrieval_success (batched targets, jit-compiled while-loop) vs. NumPy iterating one target at
  a time for the same number of steps;
* alpha_1_numerical (SciPy root of a bounded maximisation) vs. the closed form alpha_1.

Prints one line per case: case, our time, reference time, ratio (ours / reference).
"""


import jax
import numpy as np
from scipy import special, stats

from amtutor import statmech as sm
from amtutor import statmech_sims as sims
from amtutor.data import spherical_patterns
from timing import best_time




def numpy_rem(lam, alpha, dim, trials, rng):
    competitors = sm.num_patterns(alpha, dim) - 1
    a = (dim - 1) / 2
    success = np.empty(trials, bool)
    for t in range(trials):
        u = dim * (2 * stats.beta.rvs(a, a, size=competitors, random_state=rng) - 1)
        success[t] = lam * dim > special.logsumexp(lam * u)
    return success


def numpy_retrieval(memories, lam, targets, steps):
    out = []
    for mu in range(targets):
        x = memories[mu].copy()
        for _ in range(steps):
            logits = lam * memories @ x
            w = np.exp(logits - logits.max())
            x = (w / w.sum()) @ memories
        out.append(x @ memories[mu] / (memories[mu] @ memories[mu]) > 0.9)
    return np.array(out)


if __name__ == "__main__":
    lam, dim = 1.0, 20
    for offset in (-0.1, 0.0, 0.1):
        alpha = sm.alpha_1(lam, "spherical") + offset
        trials = 50
        ours = best_time(lambda: sims.rem_success(lam, alpha, dim, ensemble="spherical", trials=trials,
                                                key=jax.random.key(0)))
        rng = np.random.default_rng(0)
        reference = best_time(lambda: numpy_rem(lam, alpha, dim, trials, rng), repeats=1)
        print(f"rem_success spherical N={dim} alpha-alpha1={offset:+.1f} P={sm.num_patterns(alpha, dim)} "
              f"trials={trials}: {ours:.3f} s, numpy+scipy {reference:.3f} s, ratio {ours / reference:.3f}")

    alpha, targets, steps = sm.alpha_1(lam, "spherical") - 0.15, 32, 50
    patterns = sm.num_patterns(alpha, dim)
    memories = np.asarray(spherical_patterns(patterns, dim, key=jax.random.key(1)), np.float64)
    ours = best_time(lambda: sims.retrieval_success(lam, alpha, dim, ensemble="spherical", trials=targets,
                                                  key=jax.random.key(1), tol=0.0, max_steps=steps))
    reference = best_time(lambda: numpy_retrieval(memories, lam, targets, steps), repeats=1)
    print(f"retrieval_success spherical N={dim} P={patterns} targets={targets} steps={steps}: "
          f"{ours:.3f} s, numpy {reference:.3f} s, ratio {ours / reference:.3f}")

    lams = np.geomspace(0.05, 10, 60)
    ours = best_time(lambda: sm.alpha_1_numerical(lams, "spherical"))
    reference = best_time(lambda: sm.alpha_1(lams, "spherical"))
    print(f"alpha_1_numerical vs closed form, 60 lambdas: {ours:.4f} s, closed form {reference:.6f} s, "
          f"ratio {ours / reference:.0f}")
