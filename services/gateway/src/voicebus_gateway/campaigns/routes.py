"""`/api/campaigns`: thin HTTP handlers over `Campaigns`."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from voicebus_gateway.auth.access import requires
from voicebus_gateway.auth.scopes import Scope
from voicebus_gateway.campaigns.models import CampaignDetail, CampaignRequest, CampaignSummary
from voicebus_gateway.campaigns.service import Campaigns


def _unknown(campaign_id: str) -> HTTPException:
    return HTTPException(
        status_code=404,
        detail=f"no campaign {campaign_id!r} (unknown id, or its record expired)",
    )


def campaign_routes(campaigns: Campaigns) -> APIRouter:
    """The campaign endpoints, to include in the gateway's app."""
    router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])

    @router.post("", status_code=201, dependencies=[requires(Scope.CALLS_WRITE)])
    async def create_campaign(body: CampaignRequest) -> CampaignSummary:
        return await campaigns.create(body)

    @router.get("/{campaign_id}", dependencies=[requires(Scope.CALLS_READ)])
    async def get_campaign(campaign_id: str) -> CampaignDetail:
        campaign = await campaigns.get(campaign_id)
        if campaign is None:
            raise _unknown(campaign_id)
        return campaign

    @router.post("/{campaign_id}/cancel", dependencies=[requires(Scope.CALLS_WRITE)])
    async def cancel_campaign(campaign_id: str) -> CampaignSummary:
        campaign = await campaigns.cancel(campaign_id)
        if campaign is None:
            raise _unknown(campaign_id)
        if campaign.state == "finished":
            raise HTTPException(
                status_code=409, detail=f"campaign {campaign_id!r} already finished"
            )
        return campaign

    return router
