"""voicebus TTS: speaks the agent's reply text and streams the audio to the call's gateway."""
