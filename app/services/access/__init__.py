"""Who may get at what: API keys (stored hashed, with scopes) and download links (signed, audited)."""
