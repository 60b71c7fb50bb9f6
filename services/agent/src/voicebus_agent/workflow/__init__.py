"""Workflows: a conversation as a graph of nodes (`voicebus_contracts.agents.Workflow`).

`flow` moves a call through the graph (pure logic), `state` keeps where each call is, in Redis,
`values` reads variables from the caller's words when no model does, and `script` puts the
current node in front of a language model, with tools to collect and to move on.
"""
