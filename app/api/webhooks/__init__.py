"""Webhooks resource: registration, secrets, delivery log and redelivery."""
