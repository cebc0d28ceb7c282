"""Speed of the spin-flip Monte-Carlo kernel, `capacity.aligned_fields` (every bit of every stored
pattern, O(K^2 D)), against two references measured in the same run:

* numpy: the same maths written straightforwardly in NumPy (one stored pattern at a time);
* binary.is_fixed_point: the library's generic stability check applied to all K patterns
  (it answers less: one boolean per pattern instead of every bit's field).

Prints one line per case: case, our time, reference time, ratio (ours / reference).
"""


import jax
import numpy as np

from amtutor import binary, capacity
from amtutor.data import binary_patterns
from timing import best_time




def numpy_fields(xi, n):
    coefficients = capacity._scaled_field_polynomial(n).astype(float)
    out = np.empty_like(xi)
    for nu in range(xi.shape[0]):
        s = xi * xi[nu]
        zeta = s.sum(axis=1, keepdims=True) - s
        out[nu] = (s * np.polyval(coefficients, zeta)).sum(axis=0)
    return out


if __name__ == "__main__":
    print(f"device: {jax.devices()[0].device_kind}")
    for K, D, n in [(200, 400, 2), (600, 100, 3), (300, 40, 4), (2000, 200, 3)]:
        memories = binary_patterns(K, D, key=jax.random.key(0))
        xi = np.asarray(memories)
        ours = best_time(lambda: capacity.aligned_fields(memories, n).block_until_ready())
        ref_np = best_time(lambda: numpy_fields(xi, n), repeats=1)
        sep = binary.power(n)
        ref_fp = best_time(lambda: binary.is_fixed_point(memories, memories, sep).block_until_ready())
        case = f"aligned_fields K={K} D={D} n={n}"
        print(f"{case:36s} ours {ours * 1e3:9.2f} ms   numpy {ref_np * 1e3:9.2f} ms   ratio {ours / ref_np:6.3f}")
        print(f"{'':36s} ours {ours * 1e3:9.2f} ms   is_fixed_point {ref_fp * 1e3:9.2f} ms   ratio {ours / ref_fp:6.3f}")
