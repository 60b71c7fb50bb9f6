"""The demo agent shipped with voicebus: its knowledge base and the questions that measure
retrieval on it."""
