"""Services: the only place state changes. Each takes the `Runtime` first and owns its transaction."""
