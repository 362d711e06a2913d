"""One module per resource; each exposes `router`, listed in app/api/router.py."""
