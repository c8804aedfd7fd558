"""A worker runs every job with the code it started with, whatever happens to the files on disk meanwhile.

RQ forks a work horse per job. A horse left to import the job modules itself read them from disk at every
job, on top of the modules its worker had loaded at start: once the code changed under a running worker
(a deploy, a `git pull` under `make run`), its jobs ran half old, half new and failed on every retry (a
digest job in a colleague's stack found no `ObjectStore.sha256_of`). Real `meetrec worker` processes on a
Redis database of their own, one running a copy of the code that is changed under it.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from app import queueing
from app.queueing import DRAIN_LINK_ISSUANCES, JobSpec
from tests.helpers import runtime_on_redis_db, wait_for
from workers.worker import JOB_MODULES

ROOT = Path(__file__).resolve().parent.parent


def test_every_job_is_loaded_by_the_workers_of_its_queue():
    specs = [v for v in vars(queueing).values() if isinstance(v, JobSpec)] + [queueing.capture_spec(60)]
    assert len(specs) > 5
    for spec in specs:
        module, _, name = spec.func.rpartition(".")
        assert module in JOB_MODULES[spec.queue], spec.func
        assert callable(getattr(importlib.import_module(module), name)), spec.func


def test_a_job_runs_with_the_code_its_worker_started_with(rt, tmp_path):
    src = tmp_path / "src"
    for package in ("app", "workers", "webhooks"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    log_path = tmp_path / "worker.log"
    with runtime_on_redis_db(rt, 13) as own, log_path.open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "default"],
            cwd=src,  # `-m` puts the copy first on the path
            env={**os.environ, **own.config.child_env()},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(own.jobs.workers, timeout=60)  # registered: started, its code loaded
            jobs = src / "workers" / "jobs.py"  # now an edit of the code lands on disk, half-saved
            jobs.write_text(jobs.read_text() + "\nraise ImportError('workers/jobs.py is being edited')\n")
            own.jobs.enqueue(DRAIN_LINK_ISSUANCES, job_id="drain-after-the-edit")
            status = wait_for(
                lambda: (s := own.jobs.job_status("drain-after-the-edit")) in ("finished", "failed") and s
            )
        finally:
            worker.terminate()
            worker.wait(30)
    assert status == "finished", log_path.read_text()[-3000:]
