"""The recording core: the lifecycle state machine, recordings of every kind, rooms, sessions, retention."""
