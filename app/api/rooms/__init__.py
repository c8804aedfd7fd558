"""Eyeson rooms: join, read, shut down, and start/stop a room's recording."""
