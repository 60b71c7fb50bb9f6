"""Shared runtime of voicebus services: bus, settings, heartbeats, call registry, logging."""
