"""The agent's knowledge base: documents cut into passages, embedded offline, searched in Qdrant."""
