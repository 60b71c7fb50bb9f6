"""Twilio's REST API through the official SDK: place calls, hand calls over.

An outbound call asks Twilio to fetch its TwiML from our voice webhook, with the placement's id
in the URL, and to report each status to our status webhook: both under VOICEBUS_PUBLIC_URL,
the address Twilio reaches us at. A call whose agent listens for answering machines also asks
for Twilio's answering-machine detection in the background (the call connects at once), whose
decision Twilio posts to our machine-detection webhook, with the placement's id in its URL too.
"""

from __future__ import annotations

import logging
from typing import Literal, TypedDict
from urllib.parse import urlencode

from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from voicebus_contracts.agents import AgentSpec, Voicemail
from voicebus_gateway.placements import Placement, Placements
from voicebus_gateway.ports import CallControlError, DialError, OutboundCall
from voicebus_gateway.settings import GatewaySettings
from voicebus_gateway.twilio import twiml
from voicebus_runtime.agents import AgentDirectory

log = logging.getLogger(__name__)

VOICE_PATH = "/twilio/voice"
STATUS_PATH = "/twilio/status"
MACHINE_DETECTION_PATH = "/twilio/machine-detection"
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
PLACEMENT_PARAMETER = "placement"
REQUEST_TIMEOUT_S = 10.0
MACHINE_DETECTION_TIMEOUT_S = (3, 59)
"""The bounds Twilio accepts for MachineDetectionTimeout."""


class MachineDetection(TypedDict, total=False):
    """The SDK's `calls.create` parameters asking for answering-machine detection; none: no
    detection."""

    machine_detection: Literal["DetectMessageEnd"]
    machine_detection_timeout: int
    async_amd: Literal["true"]
    async_amd_status_callback: str
    async_amd_status_callback_method: Literal["POST"]


def machine_detection_timeout_s(voicemail: Voicemail) -> int:
    """How long Twilio may listen before deciding `unknown`: no longer than the agent holds its
    greeting, so the decision comes while it still waits, within Twilio's bounds."""
    low, high = MACHINE_DETECTION_TIMEOUT_S
    return min(max(voicemail.decision_timeout_ms // 1000, low), high)


def machine_detection(agent: AgentSpec | None, callback_url: str) -> MachineDetection:
    """For an agent that listens for answering machines: detection in the background (the call
    connects and streams at once) that decides a machine only once its greeting ends
    (DetectMessageEnd), so a message left then is recorded whole; the decision is posted to
    `callback_url`. For any other agent, nothing: the call is placed without detection.
    https://www.twilio.com/docs/voice/answering-machine-detection"""
    if agent is None or not agent.voicemail.detect:
        return MachineDetection()
    return MachineDetection(
        machine_detection="DetectMessageEnd",
        machine_detection_timeout=machine_detection_timeout_s(agent.voicemail),
        # The SDK sends the value as given: Twilio expects the string `true`.
        async_amd="true",
        async_amd_status_callback=callback_url,
        async_amd_status_callback_method="POST",
    )


class CarrierNotConfiguredError(DialError):
    """A setting Twilio needs is missing; the message names it."""


class TwilioCarrier:
    """Places calls (the Dialer port) and transfers them, with the account's credentials; a
    call's agent (`agents`) says whether Twilio listens for an answering machine."""

    def __init__(
        self, settings: GatewaySettings, placements: Placements, agents: AgentDirectory
    ) -> None:
        self._settings = settings
        self._placements = placements
        self._agents = agents
        self._client: Client | None = None
        self._http: AsyncTwilioHttpClient | None = None

    async def dial(self, call: OutboundCall) -> str:
        client = self._rest_client()
        public_url = self._settings.public_url
        if public_url is None:
            raise CarrierNotConfiguredError(
                "VOICEBUS_PUBLIC_URL is not set: Twilio needs the address it reaches this "
                "gateway at, to fetch the call's TwiML and report its status"
            )
        from_number = call.from_number or self._settings.twilio_from_number
        if from_number is None:
            raise CarrierNotConfiguredError(
                "no caller id: pass 'from' or set VOICEBUS_TWILIO_FROM_NUMBER"
            )
        agent_id = call.agent_id or self._settings.default_agent
        placement_id = await self._placements.remember(
            Placement(agent_id=agent_id, variables=call.variables)
        )
        base = public_url.rstrip("/")
        placement_query = urlencode({PLACEMENT_PARAMETER: placement_id})
        detection = machine_detection(
            self._agents.get(agent_id), f"{base}{MACHINE_DETECTION_PATH}?{placement_query}"
        )
        try:
            placed = await client.calls.create_async(
                to=call.to,
                from_=from_number,
                url=f"{base}{VOICE_PATH}?{placement_query}",
                method="POST",
                status_callback=f"{base}{STATUS_PATH}",
                status_callback_event=list(STATUS_EVENTS),
                status_callback_method="POST",
                **detection,
            )
        except TwilioRestException as refused:
            raise DialError(f"Twilio refused the call to {call.to}: {refused.msg}") from refused
        log.info(
            "call %s: placed to %s from %s, agent %s%s",
            placed.sid,
            call.to,
            from_number,
            agent_id,
            ", listening for an answering machine" if detection else "",
        )
        return str(placed.sid)

    async def transfer(self, call_sid: str, to: str) -> None:
        """Replace the call's TwiML with a <Dial> to `to`: the caller leaves our stream."""
        try:
            client = self._rest_client()
        except CarrierNotConfiguredError as missing:
            raise CallControlError(str(missing)) from missing
        try:
            await client.calls(call_sid).update_async(twiml=twiml.dial(to))
        except TwilioRestException as refused:
            raise CallControlError(f"Twilio refused the transfer: {refused.msg}") from refused

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _rest_client(self) -> Client:
        """The SDK client, made on first use (its HTTP session needs the running loop)."""
        if self._client is not None:
            return self._client
        account_sid = self._settings.twilio_account_sid
        if not account_sid:
            raise CarrierNotConfiguredError("TWILIO_ACCOUNT_SID is not set")
        if self._settings.twilio_auth_token is None:
            raise CarrierNotConfiguredError("TWILIO_AUTH_TOKEN is not set")
        self._http = AsyncTwilioHttpClient(timeout=REQUEST_TIMEOUT_S)
        client = Client(
            account_sid,
            self._settings.twilio_auth_token.get_secret_value(),
            http_client=self._http,
        )
        if self._settings.twilio_api_url:
            client.api.base_url = self._settings.twilio_api_url.rstrip("/")
        self._client = client
        return client
