"""Widgets: they render results and post messages; they never call the engine."""
