"""First-run preparation shared by `meetrec up` and `meetrec migrate`: schema, bucket, admin key, and the
computed facts of web replays stored before they were kept at ingest.

A minted admin key never goes to a log (a container's output, a service's journal, a CI log): see
`hand_over`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TextIO

import zstandard

from app import migrate
from app.config import Config
from app.embedded.servers import write_private
from app.errors import StorageError
from app.runtime import Runtime
from app.services.access import keys
from app.services.interactions import replay_backfill

log = logging.getLogger(__name__)


def bootstrap(config: Config) -> str | None:
    """Migrate the database, create the bucket, ensure an admin key; return a newly minted key or None."""
    migrate.upgrade(config.database_url)
    rt = Runtime(config)
    rt.storage.ensure_bucket()
    try:
        backfill_replay_facts(rt)
        return keys.bootstrap_admin(rt, config.bootstrap_api_key)
    finally:
        rt.db.engine.dispose()


def backfill_replay_facts(rt: Runtime) -> int:
    """Compute the facts (clicks, active time, start URL, ...) of the replays stored before migration
    0010 kept them at ingest; returns how many. Storage trouble leaves the rest for the next start; a
    replay whose blocks cannot be read keeps the facts it has, and never stops the start."""
    done, skipped = 0, set[str]()
    while pending := [
        i for i in replay_backfill.without_facts(rt, limit=len(skipped) + 100) if i not in skipped
    ]:
        for recording_id in pending:
            try:
                outcome = _backfill_one(rt, recording_id)
            except StorageError as e:
                log.warning("replay facts not computed, storage unavailable: %s", e)
                return done
            if outcome:
                done += 1
            else:
                skipped.add(recording_id)
    if done:
        log.info("computed the facts of %d web replays stored before they were kept at ingest", done)
    return done


def _backfill_one(rt: Runtime, recording_id: str) -> bool:
    """Compute one replay's facts; False when it is left for the next start or given up on."""
    try:
        return replay_backfill.recompute_facts(rt, recording_id)  # False: still taking batches
    except StorageError:
        raise
    except (zstandard.ZstdError, ValueError, KeyError) as e:  # a corrupt block: not JSON lines in zstd
        log.warning("replay %s: a block does not read (%s); its facts stay as they are", recording_id, e)
        replay_backfill.give_up(rt, recording_id)
    except Exception:
        log.exception("replay %s: facts not computed; the next start tries again", recording_id)
    return False


ADMIN_KEY_FILE = "admin-key"


def hand_over(config: Config, minted: str, terminal: TextIO) -> str:
    """Give a newly minted admin key to whoever ran the command, never to a log; return a line saying
    where it went, which never holds the key.

    On a terminal (`terminal` is one: an interactive `make run` or `meetrec migrate`) the key is shown
    there once, clearly marked. Otherwise (a container, a service, output captured to a file) it is
    written to `<MEETREC_DATA_DIR>/admin-key`, mode 0600 from its first byte."""
    if terminal.isatty():
        print(f"\n*** admin API key (shown only now, keep it): {minted} ***\n", file=terminal, flush=True)
        return "admin API key: minted and shown once on the terminal above; it is not logged"
    path = Path(config.data_dir) / ADMIN_KEY_FILE
    write_private(path, minted + "\n")
    return f"admin API key: minted into {path} (mode 0600); read it there, then delete the file"
