"""Property tests run the same generated examples on every run (CI must not be a lottery);
explore new ones locally with ``--hypothesis-seed=N``."""

from hypothesis import settings

settings.register_profile("nomosx", derandomize=True, database=None)
settings.load_profile("nomosx")
