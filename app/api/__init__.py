"""HTTP layer: dependencies, routers and their registration list (app/api/router.py)."""
