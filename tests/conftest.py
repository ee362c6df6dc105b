"""Hypothesis profiles: the default is derandomized, so CI runs the same examples every
time; `pytest --hypothesis-profile=explore` searches new ones (run it when changing passes)."""

from hypothesis import settings

settings.register_profile("default", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=500, print_blob=True)
settings.load_profile("default")
