"""When to try a webhook again: a schedule of delays with jitter, and what counts as success.

The default schedule spans more than a day (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about 27.5 h), so
a receiver that is down overnight still gets every event. Jitter spreads the retries of many events
that failed together (a receiver's outage) so they do not all return at the same second.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
DEFAULT_JITTER = 0.2


def is_success(status: int | None) -> bool:
    """Only a 2xx answer delivers an event; redirects are not followed and count as failures."""
    return status is not None and 200 <= status < 300


def disables_endpoint(status: int | None) -> bool:
    """410 Gone: the receiver asks us to stop sending (Stripe and Svix do the same)."""
    return status == 410


@dataclass(frozen=True)
class RetryPolicy:
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    jitter: float = DEFAULT_JITTER

    def delay_after(self, attempt: int, rng: random.Random | None = None) -> float | None:
        """Seconds to wait after failed attempt number `attempt` (1-based); None when it was the last.

        The delay is the scheduled one scaled by a random factor in [1 - jitter, 1 + jitter].
        """
        if attempt < 1 or attempt > len(self.schedule):
            return None
        factor = 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, self.schedule[attempt - 1] * factor)
