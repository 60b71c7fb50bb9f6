"""Shared runtime of voicebus services: bus, settings, heartbeats, call registry, and what a
service tells about itself (logs, metrics, traces)."""
