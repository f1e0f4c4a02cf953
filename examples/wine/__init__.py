"""wine."""
