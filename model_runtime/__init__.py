"""model_runtime package."""
