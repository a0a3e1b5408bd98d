"""Settings shared by every test."""

from hypothesis import settings

# Property tests check values, not speed: on a shared two-core machine an example that waits for the CPU
# (or for numba to compile a kernel) must not fail on hypothesis's default 200 ms deadline.
settings.register_profile("scalper", deadline=None)
settings.load_profile("scalper")
