"""Import time of amtutor (bare, and with the JAX-backed module the chapters use first).

Reference measured in the same run: `import numpy`, the floor of any scientific Python import.
Prints one line per case: case, our time, reference time, ratio.
"""

import statistics
import subprocess
import sys


def best_of(code: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"],
            capture_output=True, text=True, check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


if __name__ == "__main__":
    reference = best_of("import numpy")
    for case, code in [("import amtutor", "import amtutor"), ("import amtutor.binary", "import amtutor.binary")]:
        ours = best_of(code)
        print(f"{case:24s} ours {ours * 1e3:8.1f} ms   import numpy {reference * 1e3:8.1f} ms   ratio {ours / reference:6.2f}")
