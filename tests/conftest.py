"""Shared test settings."""

import os

# Tests that spawn subprocesses (the book build, the wheel check) must not grab a whole GPU.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

try:
    from hypothesis import HealthCheck, settings

    # JAX compiles on first use, so the first example of a property test is slow: no deadline.
    settings.register_profile(
        "amtutor", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=25
    )
    settings.load_profile("amtutor")
except ImportError:  # pragma: no cover
    pass
