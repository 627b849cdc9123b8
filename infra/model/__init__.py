"""The spec and the plan: what the operator wrote, and every number derived from it (pure)."""
