"""voicebus media: hears each call, decides where caller turns start and end, cuts utterances."""
