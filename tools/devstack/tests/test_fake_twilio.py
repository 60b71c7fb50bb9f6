"""The fake Twilio driven by the real twilio SDK, against a webhook receiver and a media server that
check what a Twilio application would check: signatures, forms, TwiML, Media Streams messages."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import Connect, VoiceResponse
from websockets.asyncio.server import ServerConnection, serve

from voicebus_devstack.asgi import serve_asgi
from voicebus_devstack.caller import VoiceWebhookError, dial_in
from voicebus_devstack.fake_twilio import PROGRESS_EVENTS, FakeTwilio, dialed_number

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "5" * 32
OURS = "+15550100001"
CALLEE = "+15550100002"
WAIT_S = 5.0


@dataclass
class MediaStream:
    """One media socket as the application's side sees it."""

    socket: ServerConnection
    messages: list[dict[str, Any]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, event: str) -> dict[str, Any]:
        """The first message of type `event`, once it has arrived."""
        async with asyncio.timeout(WAIT_S):
            while True:
                for message in self.messages:
                    if message["event"] == event:
                        return message
                await asyncio.sleep(0.01)


@dataclass
class MediaServer:
    url: str = ""
    streams: asyncio.Queue[MediaStream] = field(default_factory=asyncio.Queue)

    async def accept(self, socket: ServerConnection) -> None:
        stream = MediaStream(socket)
        self.streams.put_nowait(stream)
        try:
            async for raw in socket:
                stream.messages.append(json.loads(raw))
        finally:
            stream.closed.set()

    async def next_stream(self) -> MediaStream:
        return await asyncio.wait_for(self.streams.get(), WAIT_S)


@dataclass
class Webhooks:
    """What the application received, each request's signature already checked."""

    base_url: str
    media_url: str
    voice: list[dict[str, str]] = field(default_factory=list)
    status: list[dict[str, str]] = field(default_factory=list)
    amd: asyncio.Queue[dict[str, str]] = field(default_factory=asyncio.Queue)
    """The machine detection's decisions."""

    @property
    def voice_url(self) -> str:
        return f"{self.base_url}/voice"

    @property
    def status_url(self) -> str:
        return f"{self.base_url}/status"

    @property
    def amd_url(self) -> str:
        return f"{self.base_url}/amd?placement=p1"


def webhook_app(webhooks: Webhooks) -> FastAPI:
    app = FastAPI()
    validator = RequestValidator(AUTH_TOKEN)

    async def signed_form(request: Request) -> dict[str, str] | None:
        form = dict(parse_qsl((await request.body()).decode()))
        signature = request.headers.get("X-Twilio-Signature", "")
        return form if validator.validate(str(request.url), form, signature) else None

    @app.post("/voice")
    async def voice(request: Request) -> Response:
        form = await signed_form(request)
        if form is None:
            return Response(status_code=403)
        webhooks.voice.append(form)
        connect = Connect()
        connect.stream(url=webhooks.media_url).parameter(name="agent_id", value="support")
        return Response(str(VoiceResponse().append(connect)), media_type="application/xml")

    @app.post("/hangup")
    async def hangup() -> Response:
        answer = VoiceResponse()
        answer.hangup()
        return Response(str(answer), media_type="application/xml")

    @app.post("/status")
    async def status(request: Request) -> Response:
        form = await signed_form(request)
        if form is None:
            return Response(status_code=403)
        webhooks.status.append(form)
        return Response(status_code=204)

    @app.post("/amd")
    async def amd(request: Request) -> Response:
        form = await signed_form(request)
        if form is None:
            return Response(status_code=403)
        webhooks.amd.put_nowait(form)
        return Response(status_code=204)

    return app


@pytest.fixture
async def media() -> AsyncIterator[MediaServer]:
    server = MediaServer()
    async with serve(server.accept, "127.0.0.1", 0) as listening:
        port = next(iter(listening.sockets)).getsockname()[1]
        # What TwiML says in production; over plain http the caller follows it as ws://.
        server.url = f"wss://127.0.0.1:{port}/media"
        yield server


@pytest.fixture
async def webhooks(media: MediaServer) -> AsyncIterator[Webhooks]:
    received = Webhooks(base_url="", media_url=media.url)
    async with serve_asgi(webhook_app(received)) as base_url:
        received.base_url = base_url
        yield received


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as twilio:
        yield twilio


def sdk_client(fake: FakeTwilio, *, auth_token: str = AUTH_TOKEN) -> Any:
    client = Client(ACCOUNT_SID, auth_token, http_client=AsyncTwilioHttpClient())
    client.api.base_url = fake.base_url
    return client


@pytest.fixture
async def twilio(fake: FakeTwilio) -> AsyncIterator[Any]:
    client = sdk_client(fake)
    yield client
    await client.http_client.close()


async def place_call(twilio: Any, webhooks: Webhooks, **options: Any) -> Any:
    return await twilio.calls.create_async(
        to=CALLEE,
        from_=OURS,
        url=webhooks.voice_url,
        status_callback=webhooks.status_url,
        **options,
    )


def reported(fake: FakeTwilio) -> list[tuple[str, str]]:
    return [(callback.event, callback.params["CallStatus"]) for callback in fake.callbacks]


async def test_an_answered_call_streams_and_reports_each_step_in_order(
    fake: FakeTwilio, twilio: Any, webhooks: Webhooks, media: MediaServer
) -> None:
    call = await place_call(twilio, webhooks, status_callback_event=list(PROGRESS_EVENTS))
    assert call.status == "queued"
    assert call.direction == "outbound-api"

    caller = await fake.answered(call.sid, timeout_s=WAIT_S)
    stream = await media.next_stream()
    start = (await stream.until("start"))["start"]
    assert start["callSid"] == call.sid
    assert start["accountSid"] == ACCOUNT_SID
    assert start["customParameters"]["agent_id"] == "support"
    [voice] = webhooks.voice
    assert voice["CallSid"] == call.sid
    assert voice["CallStatus"] == "in-progress"
    assert voice["Direction"] == "outbound-api"
    assert (voice["From"], voice["To"]) == (OURS, CALLEE)

    await caller.press("5")
    dtmf = await stream.until("dtmf")
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "5"}

    await stream.socket.close()  # the application hangs up
    await caller.wait_closed(WAIT_S)
    assert await fake.ended(call.sid, timeout_s=WAIT_S) == "completed"
    assert reported(fake) == [
        ("initiated", "initiated"),
        ("ringing", "ringing"),
        ("answered", "in-progress"),
        ("completed", "completed"),
    ]
    assert webhooks.status == [callback.params for callback in fake.callbacks]
    assert {callback.status_code for callback in fake.callbacks} == {204}
    assert [form["SequenceNumber"] for form in webhooks.status] == ["0", "1", "2", "3"]
    assert {form["CallbackSource"] for form in webhooks.status} == {"call-progress-events"}
    assert "CallDuration" in webhooks.status[-1]
    fetched = await twilio.calls(call.sid).fetch_async()
    assert fetched.status == "completed"
    assert fetched.duration is not None


@pytest.mark.parametrize("outcome", ["busy", "no-answer", "failed"])
async def test_an_unanswered_call_ends_with_its_status(
    fake: FakeTwilio, twilio: Any, webhooks: Webhooks, media: MediaServer, outcome: Any
) -> None:
    fake.script(CALLEE, outcome)
    # `completed` is not asked for: Twilio reports the final status regardless.
    call = await place_call(twilio, webhooks, status_callback_event=["initiated", "ringing"])

    assert await fake.ended(call.sid, timeout_s=WAIT_S) == outcome
    assert reported(fake) == [
        ("initiated", "initiated"),
        ("ringing", "ringing"),
        ("completed", outcome),
    ]
    assert len(webhooks.status) == 3
    with pytest.raises(RuntimeError, match=outcome):
        await fake.answered(call.sid)
    assert webhooks.voice == []
    assert media.streams.empty()
    assert (await twilio.calls(call.sid).fetch_async()).status == outcome


@pytest.mark.parametrize(
    "twiml",
    [
        "<Response><Dial>+15550100099</Dial></Response>",
        "<Response><Dial><Number>+15550100099</Number></Dial></Response>",
    ],
)
async def test_new_twiml_with_a_dial_transfers_the_call_and_stops_the_stream(
    fake: FakeTwilio, twilio: Any, webhooks: Webhooks, media: MediaServer, twiml: str
) -> None:
    call = await place_call(twilio, webhooks)
    await fake.answered(call.sid, timeout_s=WAIT_S)
    stream = await media.next_stream()
    await stream.until("start")

    await twilio.calls(call.sid).update_async(twiml=twiml)

    assert fake.transfers == {call.sid: "+15550100099"}
    stop = await stream.until("stop")
    assert stop["stop"]["callSid"] == call.sid
    await asyncio.wait_for(stream.closed.wait(), WAIT_S)
    assert await fake.ended(call.sid, timeout_s=WAIT_S) == "completed"
    assert reported(fake) == [("completed", "completed")]


async def test_status_completed_hangs_up_a_live_call(
    fake: FakeTwilio, twilio: Any, webhooks: Webhooks, media: MediaServer
) -> None:
    call = await place_call(twilio, webhooks)
    await fake.answered(call.sid, timeout_s=WAIT_S)
    stream = await media.next_stream()
    await stream.until("start")

    updated = await twilio.calls(call.sid).update_async(status="completed")

    assert updated.status == "completed"
    assert (await stream.until("stop"))["stop"]["callSid"] == call.sid
    assert await fake.ended(call.sid, timeout_s=WAIT_S) == "completed"
    assert reported(fake) == [("completed", "completed")]
    assert fake.transfers == {}


async def test_the_callee_hanging_up_completes_the_call(
    fake: FakeTwilio, twilio: Any, webhooks: Webhooks, media: MediaServer
) -> None:
    call = await place_call(twilio, webhooks)
    caller = await fake.answered(call.sid, timeout_s=WAIT_S)
    stream = await media.next_stream()

    await caller.hang_up()

    assert (await stream.until("stop"))["stop"]["callSid"] == call.sid
    assert await fake.ended(call.sid, timeout_s=WAIT_S) == "completed"
    assert reported(fake) == [("completed", "completed")]


async def test_a_voice_webhook_that_does_not_stream_ends_the_answered_call(
    fake: FakeTwilio, twilio: Any, webhooks: Webhooks
) -> None:
    call = await twilio.calls.create_async(
        to=CALLEE,
        from_=OURS,
        url=f"{webhooks.base_url}/hangup",
        status_callback=webhooks.status_url,
    )
    with pytest.raises(RuntimeError, match="Connect"):
        await fake.answered(call.sid, timeout_s=WAIT_S)
    assert await fake.ended(call.sid, timeout_s=WAIT_S) == "completed"


async def test_wrong_credentials_are_refused_with_twilios_error(
    fake: FakeTwilio, webhooks: Webhooks
) -> None:
    client = sdk_client(fake, auth_token="not-the-token")
    try:
        with pytest.raises(TwilioRestException) as refused:
            await place_call(client, webhooks)
    finally:
        await client.http_client.close()
    assert (refused.value.status, refused.value.code) == (401, 20003)
    assert fake.calls == {}


@pytest.mark.parametrize(
    ("to", "from_", "code"),
    [("555-0100", OURS, 21211), (CALLEE, "our number", 21212)],
)
async def test_a_number_that_is_not_e164_is_refused(
    fake: FakeTwilio, twilio: Any, to: str, from_: str, code: int
) -> None:
    with pytest.raises(TwilioRestException) as refused:
        await twilio.calls.create_async(to=to, from_=from_, url="http://127.0.0.1:9/voice")
    assert (refused.value.status, refused.value.code) == (400, code)
    assert fake.calls == {}


async def test_an_unknown_call_is_not_found(fake: FakeTwilio, twilio: Any) -> None:
    unknown = "CA" + "0" * 32
    with pytest.raises(TwilioRestException) as refused:
        await twilio.calls(unknown).update_async(status="completed")
    assert (refused.value.status, refused.value.code) == (404, 20404)


async def test_the_sync_sdk_reaches_it_too(fake: FakeTwilio, webhooks: Webhooks) -> None:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = fake.base_url

    def place() -> str:
        sid: str = client.calls.create(to=CALLEE, from_=OURS, url=webhooks.voice_url).sid
        return sid

    sid = await asyncio.to_thread(place)
    assert sid in fake.calls
    await fake.answered(sid, timeout_s=WAIT_S)


async def test_bad_requests_get_errors_and_the_fake_keeps_serving(fake: FakeTwilio) -> None:
    calls = f"{fake.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    auth = (ACCOUNT_SID, AUTH_TOKEN)
    async with httpx.AsyncClient() as http:
        garbled = await http.post(calls, content=b"\xff\x00%%=&&To", auth=auth)
        no_auth = await http.post(calls, data={"To": CALLEE, "From": OURS})
        elsewhere = await http.get(f"{fake.base_url}/2010-04-01/Accounts.json", auth=auth)
        other_account = await http.post(
            calls.replace(ACCOUNT_SID, "AC" + "2" * 32), data={"To": CALLEE}, auth=auth
        )
        no_url = await http.post(calls, data={"To": CALLEE, "From": OURS}, auth=auth)

    assert garbled.status_code == 400
    assert no_auth.status_code == 401
    assert no_auth.json()["code"] == 20003
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, 20404)
    assert other_account.status_code == 404
    assert (no_url.status_code, no_url.json()["code"]) == (400, 21205)
    assert [request.status_code for request in fake.requests] == [400, 401, 404, 404, 400]
    assert fake.calls == {}


async def test_dial_in_plays_an_inbound_call(webhooks: Webhooks, media: MediaServer) -> None:
    caller = await dial_in(
        webhooks.voice_url, auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID, from_number=OURS
    )
    [voice] = webhooks.voice
    assert (voice["CallStatus"], voice["Direction"]) == ("ringing", "inbound")
    assert voice["CallSid"] == caller.call_sid
    assert caller.url == media.url.replace("wss://", "ws://")

    async with caller:
        stream = await media.next_stream()
        start = (await stream.until("start"))["start"]
        assert start["customParameters"]["agent_id"] == "support"
        assert start["customParameters"]["From"] == OURS
        await stream.socket.close()
        await caller.wait_closed(WAIT_S)
        await caller.hang_up()  # after the application hung up, and again on leaving


@pytest.mark.parametrize(
    ("path", "auth_token", "status_code"),
    [("/voice", "not-the-token", 403), ("/nowhere", AUTH_TOKEN, 404), ("/hangup", AUTH_TOKEN, 200)],
)
async def test_dial_in_says_why_a_webhook_gave_no_stream(
    webhooks: Webhooks, path: str, auth_token: str, status_code: int
) -> None:
    with pytest.raises(VoiceWebhookError) as refused:
        await dial_in(f"{webhooks.base_url}{path}", auth_token=auth_token)
    assert refused.value.status_code == status_code


@pytest.mark.parametrize(
    ("twiml", "dialed"),
    [
        ("<Response><Dial>+15550100099</Dial></Response>", "+15550100099"),
        (
            "<Response><Dial><Sip>sip:desk@example.com</Sip></Dial></Response>",
            "sip:desk@example.com",
        ),
        ("<Response><Hangup/></Response>", None),
        ("<Response><Dial>  </Dial></Response>", None),
    ],
)
def test_dialed_number(twiml: str, dialed: str | None) -> None:
    assert dialed_number(twiml) == dialed


def test_dialed_number_of_something_that_is_not_xml() -> None:
    with pytest.raises(ValueError, match="no element found"):
        dialed_number("<Response><Dial>")


def detecting(webhooks: Webhooks, **overrides: Any) -> dict[str, Any]:
    """The create parameters of a call with machine detection in the background."""
    return {
        "machine_detection": "DetectMessageEnd",
        "async_amd": "true",
        "async_amd_status_callback": webhooks.amd_url,
        "async_amd_status_callback_method": "POST",
        **overrides,
    }


async def test_machine_detection_posts_who_answered_once_the_stream_is_connected(
    fake: FakeTwilio, twilio: Any, webhooks: Webhooks, media: MediaServer
) -> None:
    fake.script(CALLEE, answered_by="machine_end_beep", detection_ms=300)
    call = await place_call(
        twilio,
        webhooks,
        status_callback_event=["answered"],
        **detecting(webhooks, machine_detection_timeout=8),
    )
    placed = fake.calls[call.sid]
    assert (placed.machine_detection, placed.machine_detection_timeout_s) == (
        "DetectMessageEnd",
        8,
    )
    assert placed.amd_callback == webhooks.amd_url

    await fake.answered(call.sid, timeout_s=WAIT_S)
    stream = await media.next_stream()
    await stream.until("start")
    decision = await asyncio.wait_for(webhooks.amd.get(), WAIT_S)
    assert decision == {
        "AccountSid": ACCOUNT_SID,
        "AnsweredBy": "machine_end_beep",
        "CallSid": call.sid,
        "MachineDetectionDuration": "300",
    }
    assert (await twilio.calls(call.sid).fetch_async()).answered_by == "machine_end_beep"
    await stream.socket.close()
    assert await fake.ended(call.sid, timeout_s=WAIT_S) == "completed"
    assert [c.event for c in fake.callbacks] == ["answered", "amd", "completed"]
    posted = fake.callbacks[1]
    assert (posted.url, posted.status_code) == (webhooks.amd_url, 204)


async def test_detection_past_its_timeout_decides_unknown(
    fake: FakeTwilio, twilio: Any, webhooks: Webhooks
) -> None:
    fake.script(CALLEE, answered_by="human", detection_ms=60_000)
    call = await place_call(twilio, webhooks, **detecting(webhooks, machine_detection_timeout=3))
    caller = await fake.answered(call.sid, timeout_s=WAIT_S)
    decision = await asyncio.wait_for(webhooks.amd.get(), WAIT_S)
    assert (decision["AnsweredBy"], decision["MachineDetectionDuration"]) == ("unknown", "3000")
    await caller.hang_up()


async def test_a_call_without_machine_detection_gets_no_decision(
    fake: FakeTwilio, twilio: Any, webhooks: Webhooks
) -> None:
    fake.script(CALLEE, answered_by="machine_end_beep")
    call = await place_call(twilio, webhooks)
    caller = await fake.answered(call.sid, timeout_s=WAIT_S)
    await caller.hang_up()
    assert await fake.ended(call.sid, timeout_s=WAIT_S) == "completed"
    assert fake.calls[call.sid].machine_detection is None
    assert webhooks.amd.empty()
    assert "amd" not in [c.event for c in fake.callbacks]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"machine_detection": "Sometimes"}, "MachineDetection must be"),
        ({"async_amd": "True"}, "AsyncAmd must be true or false"),
        ({"async_amd": "false"}, "not simulated"),
        ({"machine_detection_timeout": 60}, "MachineDetectionTimeout must be 3 to 59"),
    ],
)
async def test_machine_detection_parameters_twilio_would_refuse_are_refused(
    fake: FakeTwilio, twilio: Any, webhooks: Webhooks, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(TwilioRestException) as refused:
        await place_call(twilio, webhooks, **detecting(webhooks, **overrides))
    assert refused.value.status == 400
    assert message in refused.value.msg
    assert fake.calls == {}


def test_a_script_names_who_answers_in_twilios_words(fake: FakeTwilio) -> None:
    with pytest.raises(ValueError, match="answered_by must be one of"):
        fake.script(CALLEE, answered_by="robot")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="detection_ms"):
        fake.script(CALLEE, detection_ms=-1)
