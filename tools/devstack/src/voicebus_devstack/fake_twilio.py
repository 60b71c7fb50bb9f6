"""A local Twilio for tests: the calls subset of its REST API, and its side of the calls it places.

`FakeTwilio` serves, on 127.0.0.1 and a free port, the paths the official `twilio` SDK calls to
create, fetch and update a call, checks the SDK's basic auth, and answers in Twilio's JSON (the
call resource, or Twilio's error shape, which the SDK raises as `TwilioRestException`). Each call
it creates then plays out the way Twilio's would: signed status callbacks for the requested
progress events, then, when the callee answers, the voice webhook (`dial_in`) and a live
`TwilioCaller` on the media stream its TwiML names. A call placed with answering-machine
detection in the background (MachineDetection, AsyncAmd=true) then gets, once its stream is
connected, the signed AsyncAmdStatusCallback saying who answered, as scripted for the number.

Point the SDK at it by replacing the API domain's base URL, with the sync or the async client:

    client = Client(fake.account_sid, fake.auth_token, http_client=AsyncTwilioHttpClient())
    client.api.base_url = fake.base_url
    call = await client.calls.create_async(to=..., from_=..., url=..., status_callback=...)

What it leaves out, and refuses with a 400 saying so: TwiML given inline at create (`Twiml`),
redirecting a live call to a new `Url`, `GET` webhooks, To/From that are not E.164 numbers,
machine detection that holds the call until it decides (AsyncAmd=false).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import logging
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args
from urllib.parse import parse_qs, urlsplit

import httpx
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from voicebus_contracts import AnsweredBy
from voicebus_devstack.asgi import LocalFake
from voicebus_devstack.caller import (
    DEFAULT_ACCOUNT_SID,
    TWILIO_API_VERSION,
    TwilioCaller,
    VoiceWebhookError,
    dial_in,
    new_call_sid,
)

log = logging.getLogger(__name__)

DEFAULT_AUTH_TOKEN = "0" * 32
Outcome = Literal["answer", "busy", "no-answer", "failed"]
"""What the called number does: picks up, or the final status Twilio reports instead."""
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
ANSWERED_BY: tuple[AnsweredBy, ...] = get_args(AnsweredBy)
MACHINE_DETECTION_MODES = ("Enable", "DetectMessageEnd")
MACHINE_DETECTION_TIMEOUT_S = (3, 59)
"""The bounds of MachineDetectionTimeout, in seconds."""
DEFAULT_MACHINE_DETECTION_TIMEOUT_S = 30
PROGRESS_STATUS = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress"}
"""The CallStatus Twilio reports with each StatusCallbackEvent; `completed` carries the final one.

`initiated` is a status of its own in callbacks, one the call resource never shows; `answered`
reports `in-progress` (https://github.com/twilio/twilio-java/issues/321)."""
PROGRESS_EVENTS = (*PROGRESS_STATUS, "completed")
"""The StatusCallbackEvent values Twilio accepts."""
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
CALLBACK_TIMEOUT_S = 5.0
UNREACHABLE = (httpx.HTTPError, httpx.InvalidURL, OSError)
"""What reaching an application's URL can fail with."""
Form = dict[str, list[str]]


@dataclass(frozen=True)
class Script:
    """What calls to a number do."""

    outcome: Outcome = "answer"
    answered_by: AnsweredBy = "human"
    """Who answered, for a call placed with machine detection."""
    detection_ms: int = 0
    """How long detection listens before deciding (its MachineDetectionDuration); past the
    call's MachineDetectionTimeout, it decides `unknown` at the timeout."""


@dataclass(frozen=True)
class RestRequest:
    """One request the REST API received, with the status it was answered."""

    method: str
    path: str
    form: Form
    status_code: int


@dataclass(frozen=True)
class StatusCallback:
    """One status callback sent for a call; `status_code` None: the application was unreachable."""

    call_sid: str
    event: str
    """The progress event: initiated, ringing, answered or completed (every final status); or
    `amd`, the machine detection's decision (Twilio's AsyncAmdStatusCallback)."""
    url: str
    params: dict[str, str]
    status_code: int | None


class TwilioApiError(Exception):
    """A request refused with Twilio's error JSON; no `code` for what only the fake refuses."""

    def __init__(
        self, status: int, message: str, code: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.detail = detail

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"message": self.message, "status": self.status}
        if self.code is not None:
            body |= {
                "code": self.code,
                "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            }
        if self.detail is not None:
            body["detail"] = self.detail
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if self.status == 401 else None
        return JSONResponse(body, status_code=self.status, headers=headers)


def _not_simulated(what: str) -> TwilioApiError:
    return TwilioApiError(400, f"{what} is not simulated by the fake Twilio")


def _not_found(path: str) -> TwilioApiError:
    return TwilioApiError(404, f"The requested resource {path} was not found", 20404)


class FakeCall:
    """One call the fake placed: the fields of its resource, and the caller once it answered."""

    def __init__(
        self,
        *,
        account_sid: str,
        to: str,
        from_number: str,
        url: str,
        status_callback: str | None,
        events: frozenset[str],
        machine_detection: str | None = None,
        machine_detection_timeout_s: int = DEFAULT_MACHINE_DETECTION_TIMEOUT_S,
        amd_callback: str | None = None,
    ) -> None:
        self.sid = new_call_sid()
        self.account_sid = account_sid
        self.to = to
        self.from_number = from_number
        self.url = url
        self.status_callback = status_callback
        self.events = events
        self.machine_detection = machine_detection
        """Enable or DetectMessageEnd, if the call asked for machine detection."""
        self.machine_detection_timeout_s = machine_detection_timeout_s
        self.amd_callback = amd_callback
        """Where the detection's decision is posted (AsyncAmdStatusCallback)."""
        self.answered_by: AnsweredBy | None = None
        self.status = "queued"
        self.date_created = self.date_updated = datetime.now(UTC)
        self.start_time: datetime | None = None
        self.end_time: datetime | None = None
        self.caller: TwilioCaller | None = None
        self.error: str | None = None
        """Why an answered call could not be connected to its media stream."""
        self.answered = asyncio.Event()
        self.over = asyncio.Event()
        """Set once the call has its final status."""
        self.reported = asyncio.Event()
        """Set once its final status callback went out (or there was none to send)."""
        self.callbacks_sent = 0

    @property
    def duration_s(self) -> int:
        if self.start_time is None or self.end_time is None:
            return 0
        return int((self.end_time - self.start_time).total_seconds())

    def progress(self, status: str) -> None:
        self.status = status
        self.date_updated = datetime.now(UTC)
        if status == "in-progress":
            self.start_time = self.date_updated

    def finish(self, status: str) -> bool:
        """Give the call its final status; False if it already had one."""
        if self.over.is_set():
            return False
        self.progress(status)
        self.end_time = self.date_updated
        self.over.set()
        return True

    def resource(self) -> dict[str, Any]:
        """The call as Twilio's REST API shows it."""
        uri = f"/{TWILIO_API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": self.answered_by,
            "api_version": TWILIO_API_VERSION,
            "caller_name": None,
            "date_created": _rfc2822(self.date_created),
            "date_updated": _rfc2822(self.date_updated),
            "direction": "outbound-api",
            "duration": str(self.duration_s) if self.over.is_set() else None,
            "end_time": _rfc2822(self.end_time) if self.end_time else None,
            "forwarded_from": None,
            "from": self.from_number,
            "from_formatted": self.from_number,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": _rfc2822(self.start_time) if self.start_time else None,
            "status": self.status,
            "subresource_uris": {
                name: f"{uri}/{name.title()}.json" for name in ("notifications", "recordings")
            },
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": f"{uri}.json",
        }


class FakeTwilio(LocalFake):
    """Twilio's REST API for calls, and the calls; use as `async with FakeTwilio() as fake:`.

    `script(number, outcome, answered_by=, detection_ms=)` decides what a called number does;
    `answered(sid)` hands over the live caller of an answered call. Everything is recorded for
    assertions: `requests` (REST), `callbacks` (status and machine-detection callbacks and how
    they were answered), `transfers` (the number an update's `<Dial>` sent a call to) and `calls`
    (each with what its create asked for).
    """

    def __init__(
        self, *, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.base_url = ""
        """http://127.0.0.1:<port>, once entered: the SDK's `client.api.base_url`."""
        self.calls: dict[str, FakeCall] = {}
        self.requests: list[RestRequest] = []
        self.callbacks: list[StatusCallback] = []
        self.transfers: dict[str, str] = {}
        self._scripts: dict[str, Script] = {}
        self._validator = RequestValidator(auth_token)
        self._simulations: set[asyncio.Task[None]] = set()
        self._http = httpx.AsyncClient(timeout=CALLBACK_TIMEOUT_S)

    async def _closing(self) -> None:
        for simulation in self._simulations:
            simulation.cancel()
        await asyncio.gather(*self._simulations, return_exceptions=True)
        for call in self.calls.values():
            if call.caller is not None:
                await call.caller.hang_up()
        await self._http.aclose()

    def script(
        self,
        number: str,
        outcome: Outcome = "answer",
        *,
        answered_by: AnsweredBy = "human",
        detection_ms: int = 0,
    ) -> None:
        """What calls to `number` do from now on (a person answers unless told otherwise): the
        outcome, and for calls with machine detection who answered, decided after
        `detection_ms`."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        if answered_by not in ANSWERED_BY:
            raise ValueError(
                f"answered_by must be one of {', '.join(ANSWERED_BY)}, not {answered_by!r}"
            )
        if detection_ms < 0:
            raise ValueError(f"detection_ms must not be negative, not {detection_ms}")
        self._scripts[number] = Script(outcome, answered_by, detection_ms)

    async def answered(self, call_sid: str, *, timeout_s: float = 10.0) -> TwilioCaller:
        """The live caller of call `call_sid` once it answered and its media stream connected.

        Raises RuntimeError if the call ended without that, TimeoutError if it takes too long.
        """
        call = self._known(call_sid)
        await _first_of(call.answered, call.over, timeout_s=timeout_s, what=f"{call_sid} to answer")
        if not call.answered.is_set() or call.caller is None:
            reason = f": {call.error}" if call.error else ""
            raise RuntimeError(f"call {call_sid} ended {call.status} unanswered{reason}")
        return call.caller

    async def ended(self, call_sid: str, *, timeout_s: float = 10.0) -> str:
        """The final status of call `call_sid`, once its final status callback went out."""
        call = self._known(call_sid)
        await _first_of(call.reported, timeout_s=timeout_s, what=f"{call_sid} to end")
        return call.status

    def _known(self, call_sid: str) -> FakeCall:
        try:
            return self.calls[call_sid]
        except KeyError:
            raise KeyError(f"the fake Twilio placed no call {call_sid}") from None

    # The REST API.

    def _app(self) -> Starlette:
        calls = f"/{TWILIO_API_VERSION}/Accounts/{{account_sid}}/Calls"
        return Starlette(
            routes=[
                Route(f"{calls}.json", self._rest(self._create), methods=["POST"]),
                Route(f"{calls}/{{call_sid}}.json", self._rest(self._fetch), methods=["GET"]),
                Route(f"{calls}/{{call_sid}}.json", self._rest(self._update), methods=["POST"]),
                Route("/{path:path}", self._rest(self._unknown)),
            ]
        )

    def _rest(
        self, handler: Callable[[Request, Form], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """`handler` behind Twilio's basic auth and account check, refusals logged, all recorded."""

        async def endpoint(request: Request) -> Response:
            body = (await request.body()).decode("ascii", errors="replace")
            form = parse_qs(body, keep_blank_values=True)
            try:
                self._authenticate(request)
                if request.path_params.get("account_sid", self.account_sid) != self.account_sid:
                    raise _not_found(request.url.path)
                response = await handler(request, form)
            except TwilioApiError as refusal:
                log.warning(
                    "fake Twilio refused %s %s: %s", request.method, request.url.path, refusal
                )
                response = refusal.response()
            self.requests.append(
                RestRequest(request.method, request.url.path, form, response.status_code)
            )
            return response

        return endpoint

    def _authenticate(self, request: Request) -> None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            credentials = base64.b64decode(encoded, validate=True)
        except ValueError:  # not base64, or not even ASCII
            credentials = b""
        expected = f"{self.account_sid}:{self.auth_token}".encode()
        if scheme.lower() != "basic" or not secrets.compare_digest(credentials, expected):
            raise TwilioApiError(
                401, "Authenticate", 20003, detail="Your AccountSid or AuthToken was incorrect."
            )

    async def _create(self, request: Request, form: Form) -> Response:
        to, from_number = _one(form, "To"), _one(form, "From")
        if not to:
            raise TwilioApiError(400, "A 'To' phone number is required.", 21201)
        if not E164.fullmatch(to):
            raise TwilioApiError(400, f"Invalid 'To' Phone Number: {to}", 21211)
        if not from_number:
            raise TwilioApiError(400, "A 'From' phone number is required.", 21213)
        if not E164.fullmatch(from_number):
            raise TwilioApiError(400, f"Invalid 'From' Phone Number: {from_number}", 21212)
        for unsupported in ("Twiml", "ApplicationSid"):
            if unsupported in form:
                raise _not_simulated(f"placing a call with {unsupported}")
        url = _one(form, "Url")
        if not url:
            raise TwilioApiError(400, "Url parameter is required.", 21205)
        status_callback = _one(form, "StatusCallback") or None
        amd_callback = _one(form, "AsyncAmdStatusCallback") or None
        for name, value in (
            ("Url", url),
            ("StatusCallback", status_callback),
            ("AsyncAmdStatusCallback", amd_callback),
        ):
            if value is not None and not _is_web_url(value):
                raise TwilioApiError(400, f"{name} is not a valid URL: {value}", 21205)
        for name in ("Method", "StatusCallbackMethod", "AsyncAmdStatusCallbackMethod"):
            if (_one(form, name) or "POST").upper() != "POST":
                raise _not_simulated(f"{name}={_one(form, name)}")
        machine_detection, detection_timeout_s = _machine_detection(form)
        events = form.get("StatusCallbackEvent") or ["completed"]
        unknown = sorted(set(events) - set(PROGRESS_EVENTS))
        if unknown:
            raise _not_simulated(f"StatusCallbackEvent {', '.join(unknown)}")
        call = FakeCall(
            account_sid=self.account_sid,
            to=to,
            from_number=from_number,
            url=url,
            status_callback=status_callback,
            events=frozenset(events),
            machine_detection=machine_detection,
            machine_detection_timeout_s=detection_timeout_s,
            amd_callback=amd_callback,
        )
        self.calls[call.sid] = call
        simulation = asyncio.create_task(self._simulate(call), name=f"fake-twilio-{call.sid}")
        self._simulations.add(simulation)
        simulation.add_done_callback(self._simulations.discard)
        return JSONResponse(call.resource(), status_code=201)

    async def _fetch(self, request: Request, form: Form) -> Response:
        return JSONResponse(self._call_at(request).resource())

    async def _update(self, request: Request, form: Form) -> Response:
        """Twilio's two ways to end a live call: a final Status, or TwiML that replaces its own.

        New TwiML takes the call out of `<Connect><Stream>` (the stream gets `stop` and closes);
        a `<Dial>` in it hands the caller over (recorded in `transfers`), which ends our call.
        """
        call = self._call_at(request)
        status, twiml = _one(form, "Status"), _one(form, "Twiml")
        if "Url" in form:
            raise _not_simulated("redirecting a call to a new Url")
        if twiml is not None:
            if call.status != "in-progress":
                raise TwilioApiError(400, "Call is not in-progress. Cannot redirect.", 21220)
            try:
                dialed = dialed_number(twiml)
            except ValueError as exc:
                raise TwilioApiError(400, f"Twiml is not valid TwiML: {exc}") from exc
            if dialed is not None:
                self.transfers[call.sid] = dialed
            await _hang_up(call, "completed")
        elif status == "completed":
            await _hang_up(call, "completed" if call.status == "in-progress" else "canceled")
        elif status == "canceled":
            # Twilio: canceling only stops a call that is not yet answered.
            if call.status in ("queued", "ringing"):
                await _hang_up(call, "canceled")
        elif status is not None:
            raise TwilioApiError(400, f"Status must be canceled or completed, not {status!r}")
        return JSONResponse(call.resource())

    async def _unknown(self, request: Request, form: Form) -> Response:
        raise _not_found(request.url.path)

    def _call_at(self, request: Request) -> FakeCall:
        call = self.calls.get(request.path_params["call_sid"])
        if call is None:
            raise _not_found(request.url.path)
        return call

    # The calls.

    async def _simulate(self, call: FakeCall) -> None:
        """Play call `call` out: initiated, ringing, then the number's scripted outcome."""
        try:
            await self._report(call, "initiated")
            if not call.over.is_set():
                call.progress("ringing")
                await self._report(call, "ringing")
            if not call.over.is_set():
                script = self._scripts.get(call.to, Script())
                if script.outcome == "answer":
                    await self._answer(call, script)
                else:
                    call.finish(script.outcome)
            await call.over.wait()
            if call.caller is not None:
                await call.caller.hang_up()
            await self._report(call, "completed")
        except Exception:
            log.exception("fake Twilio broke playing call %s", call.sid)
            call.finish("failed")
        finally:
            call.reported.set()

    async def _answer(self, call: FakeCall, script: Script) -> None:
        """The callee picks up: fetch the call's TwiML and stream until either side hangs up;
        machine detection, if asked for, decides meanwhile."""
        call.progress("in-progress")
        try:
            call.caller = caller = await dial_in(
                call.url,
                auth_token=self.auth_token,
                from_number=call.from_number,
                to_number=call.to,
                call_sid=call.sid,
                direction="outbound-api",
                account_sid=call.account_sid,
                http=self._http,
            )
            await caller.__aenter__()
        except (VoiceWebhookError, *UNREACHABLE, websockets.WebSocketException) as exc:
            # Twilio answers the callee with "an application error has occurred" and hangs up.
            log.warning("fake Twilio could not connect call %s: %s", call.sid, exc)
            call.error = str(exc)
            await self._report(call, "answered")
            call.finish("completed")
            return
        call.answered.set()
        await self._report(call, "answered")
        if call.machine_detection is not None:
            await self._detect(call, caller, script)
        await _first_of(caller.closed, call.over)
        call.finish("completed")

    async def _detect(self, call: FakeCall, caller: TwilioCaller, script: Script) -> None:
        """Listen for the scripted time (up to the call's timeout, which decides `unknown`),
        then post who answered; nothing if the call ends first."""
        timeout_ms = call.machine_detection_timeout_s * 1000
        timed_out = script.detection_ms > timeout_ms
        listened_ms = timeout_ms if timed_out else script.detection_ms
        with contextlib.suppress(TimeoutError):
            await _first_of(caller.closed, call.over, timeout_s=listened_ms / 1000)
        if caller.closed.is_set() or call.over.is_set():
            return
        call.answered_by = "unknown" if timed_out else script.answered_by
        if call.amd_callback is None:
            return  # Twilio warns (21262) and keeps the decision on the call resource only
        params = {
            "AccountSid": call.account_sid,
            "AnsweredBy": call.answered_by,
            "CallSid": call.sid,
            "MachineDetectionDuration": str(listened_ms),
        }
        await self._deliver(call, "amd", call.amd_callback, params)

    async def _report(self, call: FakeCall, event: str) -> None:
        """POST the status callback for `event` if the call asked for it; final statuses always."""
        if call.status_callback is None or (event not in call.events and event != "completed"):
            return
        params = {
            "AccountSid": call.account_sid,
            "ApiVersion": TWILIO_API_VERSION,
            "CallSid": call.sid,
            "CallStatus": PROGRESS_STATUS.get(event, call.status),
            "CallbackSource": "call-progress-events",
            "Called": call.to,
            "Caller": call.from_number,
            "Direction": "outbound-api",
            "From": call.from_number,
            "SequenceNumber": str(call.callbacks_sent),
            "Timestamp": _rfc2822(datetime.now(UTC)),
            "To": call.to,
        }
        if event == "completed":
            params["CallDuration"] = str(call.duration_s)
        call.callbacks_sent += 1
        await self._deliver(call, event, call.status_callback, params)

    async def _deliver(self, call: FakeCall, event: str, url: str, params: dict[str, str]) -> None:
        """POST a callback signed the way Twilio signs it, and record how it was answered."""
        signature = str(self._validator.compute_signature(url, params))
        status_code: int | None = None
        try:
            response = await self._http.post(
                url, data=params, headers={"X-Twilio-Signature": signature}
            )
            status_code = response.status_code
        except UNREACHABLE as exc:
            log.warning("fake Twilio could not deliver %s callback to %s: %r", event, url, exc)
        self.callbacks.append(StatusCallback(call.sid, event, url, params, status_code))


def _machine_detection(form: Form) -> tuple[str | None, int]:
    """The machine detection a create asks for (its mode, if any) and its timeout in seconds."""
    mode, async_amd = _one(form, "MachineDetection"), _one(form, "AsyncAmd") or "false"
    timeout = _one(form, "MachineDetectionTimeout")
    low, high = MACHINE_DETECTION_TIMEOUT_S
    if mode is not None and mode not in MACHINE_DETECTION_MODES:
        raise TwilioApiError(400, f"MachineDetection must be Enable or DetectMessageEnd: {mode}")
    if async_amd not in ("true", "false"):
        raise TwilioApiError(400, f"AsyncAmd must be true or false: {async_amd}")
    if mode is not None and async_amd == "false":
        raise _not_simulated("machine detection that holds the call (AsyncAmd=false)")
    if timeout is not None and not (timeout.isdigit() and low <= int(timeout) <= high):
        raise TwilioApiError(400, f"MachineDetectionTimeout must be {low} to {high}: {timeout}")
    return mode, DEFAULT_MACHINE_DETECTION_TIMEOUT_S if timeout is None else int(timeout)


def dialed_number(twiml: str) -> str | None:
    """Where TwiML's `<Dial>` sends the call (its Number, Sip or text); None if it dials nowhere."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise ValueError(str(exc)) from exc
    dial = root.find("Dial") if root.tag == "Response" else None
    if dial is None:
        return None
    target = dial.find("Number")
    if target is None:
        target = dial.find("Sip")
    text = (target if target is not None else dial).text
    return text.strip() if text and text.strip() else None


async def _hang_up(call: FakeCall, status: str) -> None:
    """End `call` with `status`, stopping its media stream the way Twilio leaves one."""
    if call.finish(status) and call.caller is not None:
        await call.caller.hang_up()


async def _first_of(
    *events: asyncio.Event, timeout_s: float | None = None, what: str = "an event"
) -> None:
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    if not done:
        raise TimeoutError(f"waited {timeout_s} s for {what}")


def _is_web_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _one(form: Form, name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _rfc2822(moment: datetime) -> str:
    """Twilio's date format: Tue, 31 Aug 2010 20:36:28 +0000."""
    return email.utils.format_datetime(moment)
