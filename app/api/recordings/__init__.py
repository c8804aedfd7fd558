"""Recordings: read and delete."""
