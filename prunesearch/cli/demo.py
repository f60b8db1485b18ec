"""Commands registered on the prunesearch CLI app (filled in by its area)."""
