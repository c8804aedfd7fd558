#!/bin/sh
# The container's roles. `exec` makes meetrec the process tini signals: SIGTERM drains it.
#   api                 gunicorn (app/gunicorn_conf.py; MEETREC_API_* tune it)
#   worker [queues...]  RQ worker; capture, media, webhooks, default when no queue is named
#   scheduler           APScheduler; only enqueues, safe to run twice
#   migrate             database migrations, bucket, admin key; run once per release before the others
#                       (a key it mints is never logged: shown on a terminal, else $MEETREC_DATA_DIR/admin-key)
#   health ROLE         exit 0 when ROLE (api, worker, scheduler) is healthy: the compose healthchecks
# Anything else runs as a command, e.g. `meetrec keys create --admin` or `sh`.
set -eu

role="${1:-api}"
[ "$#" -gt 0 ] && shift

case "$role" in
  api)       exec meetrec api "$@" ;;
  worker)    exec meetrec worker "$@" ;;
  scheduler) exec meetrec scheduler "$@" ;;
  migrate)   exec meetrec migrate "$@" ;;
  health)    exec meetrec health "$@" ;;
  *)         exec "$role" "$@" ;;
esac
