"""Twilio: the voice webhook, status callbacks, Media Streams and the REST API."""
