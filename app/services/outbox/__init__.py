"""Webhooks: the outbox written in each change's transaction, the endpoints, every delivery attempt."""
