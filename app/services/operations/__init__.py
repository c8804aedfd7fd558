"""Keeping the system honest: the reconciler, the counts every surface shows, readiness, /system."""
