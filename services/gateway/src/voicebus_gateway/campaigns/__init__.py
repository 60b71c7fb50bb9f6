"""Outbound campaigns: call a list of numbers with an agent, a few at a time, retrying busy and
unanswered numbers.

For the app: build one `Campaigns(redis, dialer)` per replica, `start()`/`stop()` it in the
lifespan, include `campaign_routes(campaigns)`, and pass every carrier status callback to
`campaigns.on_call_status(call_id, status)`. `Campaigns` explains what happens when a replica
dies; `store` lists the Redis keys.
"""

from voicebus_gateway.campaigns.models import (
    CampaignDetail,
    CampaignRequest,
    CampaignSummary,
)
from voicebus_gateway.campaigns.routes import campaign_routes
from voicebus_gateway.campaigns.service import Campaigns

__all__ = ["CampaignDetail", "CampaignRequest", "CampaignSummary", "Campaigns", "campaign_routes"]
