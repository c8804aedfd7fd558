"""The delivery pump: a `webhooks` job that sends what is due, concurrently, until nothing is left.

Each round is one transaction: log the attempts that finished, then claim as many due deliveries as
there are free senders (`claims`). The claimed ones go to a pool of POOL_SIZE threads at once, at most
PER_ENDPOINT of them in flight to one endpoint (PER_FAILING_ENDPOINT once its last attempt failed),
so a receiver that hangs until the timeout holds a few senders, never all of them. A round does not
wait for slow receivers: it records what finished within GATHER_SECONDS of the first answer, and
claims again at least every POLL_SECONDS. Connections are kept alive per receiver across attempts and
rounds (`webhooks.delivery.Sender`, one per process).

A pump stops claiming after CLAIM_SECONDS and leaves a successor on the queue, so a worker's warm
shutdown waits seconds, not minutes, and other queues' jobs get their turn. A worker killed mid-round
loses nothing: its claims stay "sending" until `outbox.dispatch_pending` makes them pending again (the
attempts in flight may then reach their receiver twice: at least once, receivers dedupe on webhook-id).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from sqlalchemy.exc import OperationalError

from app.runtime import Runtime
from app.services.outbox import claims, outbox, results
from webhooks import delivery

log = logging.getLogger(__name__)

POOL_SIZE = 16
PER_ENDPOINT = 8
PER_FAILING_ENDPOINT = 2
CLAIM_SECONDS = 10.0
GATHER_SECONDS = 0.01
POLL_SECONDS = 0.25
ROUND_TRIES = 3

_sender: delivery.Sender | None = None
_sender_lock = threading.Lock()


def sender() -> delivery.Sender:
    """This process's keep-alive connections to receivers."""
    global _sender
    with _sender_lock:
        if _sender is None:
            _sender = delivery.Sender(max_idle=PER_ENDPOINT)
        return _sender


def attempt(rt: Runtime, send: claims.Send, via: delivery.Sender | None = None) -> delivery.Result:
    """POST one claimed delivery (on `via`'s connections, else on one of its own)."""
    if send.unsigned:
        return delivery.Result(None, 0, send.unsigned)
    post = via.post if via is not None else delivery.post
    return post(
        send.endpoint.url,
        send.body,
        send.headers,
        timeout=rt.config.webhook_timeout,
        allowlist=rt.config.url_allowlist,
    )


def run(rt: Runtime, scheduled_for: str | None = None) -> str:
    """Send every due delivery (see the module), and the retry `scheduled_for` (the job's own, due
    now give or take a clock's error); returns what it did, for the job log."""
    return _Pump(rt, sender(), [scheduled_for] if scheduled_for else []).run()


class _Pump:
    def __init__(self, rt: Runtime, via: delivery.Sender, also: list[str]) -> None:
        self.rt, self.via, self.also = rt, via, also
        self.flying: dict[Future[delivery.Result], claims.Send] = {}
        self.claim_until = time.monotonic() + CLAIM_SECONDS
        self.outcomes: Counter[str] = Counter()

    def run(self) -> str:
        done: list[results.Done] = []
        with ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="webhook") as pool:
            while True:
                stopped = time.monotonic() >= self.claim_until
                free = 0 if stopped else POOL_SIZE - len(self.flying)
                for send in self._round(done, free):
                    self.flying[pool.submit(attempt, self.rt, send, self.via)] = send
                if not self.flying:
                    break
                done = self._gather()
        if stopped:
            outbox.wake(self.rt)  # what came due meanwhile is the successor's
        return ", ".join(f"{n} {what}" for what, n in sorted(self.outcomes.items())) or "nothing due"

    def _round(self, done: list[results.Done], free: int) -> list[claims.Send]:
        """Record `done` and claim up to `free` more, in one transaction; schedule the retries."""
        if not done and not free:
            return []
        busy = Counter(send.endpoint.id for send in self.flying.values())
        full = {send.endpoint.id for send in self.flying.values() if busy[send.endpoint.id] >= send.cap}
        for tries in range(1, ROUND_TRIES + 1):
            try:
                with self.rt.db.transaction() as s:
                    retries = results.record(self.rt, s, done)
                    claimed = claims.claim(
                        self.rt,
                        s,
                        limit=free,
                        per_endpoint=PER_ENDPOINT,
                        per_failing=PER_FAILING_ENDPOINT,
                        busy=busy,
                        full=full,
                        also=self.also,
                    )
                break
            except OperationalError as e:  # a lock timeout or a deadlock victim: the round is redone
                if tries == ROUND_TRIES:
                    raise
                log.warning("webhook round failed (%s); trying again", e)
                time.sleep(0.1 * tries)
        self.also = []
        results.schedule(self.rt, retries)
        self.outcomes.update("sent" if r.ok else "failed" for _, r in done)
        self.outcomes["cancelled"] += len(claimed.cancelled)
        if claimed.more:
            outbox.wake(self.rt)  # more is due than this job can send now: another worker can help
        return claimed.sends

    def _gather(self) -> list[results.Done]:
        """The attempts that finished: waits for a first one (at most POLL_SECONDS), then briefly for
        the others (at most GATHER_SECONDS), so that a round records many at once without waiting on
        slow receivers."""
        first, _ = wait(self.flying, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
        if first and len(first) < len(self.flying):
            wait(self.flying, timeout=GATHER_SECONDS)
        finished = [f for f in self.flying if f.done()]
        return [(self.flying.pop(f), _outcome(f)) for f in finished]


def _outcome(future: Future[delivery.Result]) -> delivery.Result:
    error = future.exception()
    if error is None:
        return future.result()
    log.error("webhook attempt raised", exc_info=error)  # a bug: the attempt fails and is retried
    return delivery.Result(None, 0, f"internal error: {type(error).__name__}")
