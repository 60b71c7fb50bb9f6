"""voicebus analytics: records every call, its turns and their latency in SQL, and serves them."""
