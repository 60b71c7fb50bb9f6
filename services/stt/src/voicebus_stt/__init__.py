"""voicebus STT: turns each caller utterance into its final transcript."""
