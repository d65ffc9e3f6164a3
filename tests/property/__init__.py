"""Property tests of the macro handler (Issue 5, "never crash, never lose a line").

Settings come from the ``HYPOTHESIS_PROFILE`` environment variable:

- ``ci`` (the default): derandomized (the same examples on every run, so CI is reproducible), no example
  database, sized so that the whole property suite runs in well under a minute;
- ``long``: random, with the example database, twenty times the examples of ``ci``:
  ``HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/property``.

For hours of the same invariants over wider mutations, run the standing fuzz target:
``.venv/bin/python -m tests.fuzz.fuzz_handler --minutes 30``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SCALE = {"ci": 1, "long": 20}.get(PROFILE, 1)

_COMMON = settings(
    deadline=None,  # the first example imports troposphere; timing is checked by the hostile-input tests
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.register_profile("ci", _COMMON, derandomize=True, database=None)
settings.register_profile("long", _COMMON, derandomize=False)


def profile(examples: int) -> settings:
    """The settings of the active profile with ``examples`` (scaled) examples."""
    return settings(settings.get_profile(PROFILE if PROFILE in ("ci", "long") else "ci"), max_examples=examples * SCALE)
