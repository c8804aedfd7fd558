"""Framework-free outbound webhooks: URL safety, signing (Eyeson and Standard Webhooks), the delivery
attempt and the retry policy. Standard library only; the app side (events, outbox, logs) is in app/."""
