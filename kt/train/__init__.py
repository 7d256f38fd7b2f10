"""The optax training loop shared by every gradient model."""
