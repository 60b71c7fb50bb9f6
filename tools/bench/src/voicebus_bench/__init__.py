"""voicebus benchmarks: `make bench` measures latency, bus overhead, capacity and STT cost."""
