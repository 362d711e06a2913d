"""Cross-cutting pieces of the app: settings, logging, security, limits."""
