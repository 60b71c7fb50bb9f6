"""Who may use the gateway's API, and how: API keys (stored hashed, scoped, revocable, made
with `python -m voicebus_gateway keys`), the policy that says when they are required, per-key
rate limits, single-use web call tokens, cross-origin rules, and logs kept free of secrets.
docs/security.md describes the model for operators.
"""
