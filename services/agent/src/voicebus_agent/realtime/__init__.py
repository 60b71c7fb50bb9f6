"""The realtime pipeline: a speech-to-speech model hears and answers the calls of the agents
that choose it (`AgentSpec.pipeline == "realtime"`), on the same bus as the cascaded one."""
