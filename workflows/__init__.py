"""Async pipeline tasks that chain the stages, one per task family."""
