"""meetrec: self-hosted recording orchestrator for video meeting apps."""
