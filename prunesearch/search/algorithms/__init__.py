"""The built-in search algorithms; each module registers its own (search/_registry.py)."""
