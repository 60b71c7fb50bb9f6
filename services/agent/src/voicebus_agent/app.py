"""The agent's bus wiring: greet when a call starts, answer every final transcript and keypad
entry, and settle the caller's turns spoken over a reply (resume it or cancel it)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, NamedTuple
from uuid import UUID

import httpx
from fastapi import FastAPI, Response
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError

from voicebus_agent.catalog.api import Announce, agents_router
from voicebus_agent.catalog.settings import CatalogSettings
from voicebus_agent.catalog.store import SqlAgentCatalog
from voicebus_agent.conversation import Conversation, Reply, chunks_of
from voicebus_agent.endpointing import HeldTurn, HeldTurns, sounds_finished
from voicebus_agent.history import RedisConversationStore
from voicebus_agent.keypad import Keypad, KeypadEntry
from voicebus_agent.knowledge.api import knowledge_router
from voicebus_agent.knowledge.embeddings import E5Embedder, Embedder
from voicebus_agent.knowledge.store import KnowledgeBases
from voicebus_agent.models import ModelResponders
from voicebus_agent.offline import (
    DEMO_DOCUMENT,
    DEMO_KNOWLEDGE_BASE,
    OfflineResponder,
    OfflineResponders,
    demo_files,
)
from voicebus_agent.ports import ActionLog, ConversationStore, Responder
from voicebus_agent.profiles import Profile, Profiles, WorkflowsFactory
from voicebus_agent.realtime.calls import RealtimeCalls
from voicebus_agent.realtime.session import OpenAIRealtime
from voicebus_agent.responders import AcknowledgingResponder
from voicebus_agent.settings import AgentSettings
from voicebus_agent.tools import CallTools
from voicebus_agent.turns import Interrupt, Resume, settle
from voicebus_agent.voicemail import AnsweringMachines, HeldGreeting, verdict
from voicebus_agent.workflow.flow import Flow
from voicebus_agent.workflow.progress import Workflows
from voicebus_agent.workflow.state import RedisWorkflowStates
from voicebus_contracts import (
    MAX_TEXT_CHARS,
    AnsweredBy,
    CallAnsweredBy,
    CallEnded,
    CallStarted,
    CallStatusChanged,
    CancelReply,
    DtmfReceived,
    Envelope,
    FinalTranscript,
    HangUp,
    InboundAudioFrame,
    ReplyCancelled,
    ReplyPaused,
    ReplyPlaybackStarted,
    ResumePlayback,
    SpeechStarted,
    SpeechStopped,
    StageStamps,
    ToolCalled,
    ToolReturned,
    WorkflowProgressed,
    derived_id,
    envelope,
)
from voicebus_contracts.agents import AgentConfigured, AgentRemoved, Workflow
from voicebus_contracts.topics import (
    AGENTS,
    CALLS,
    PLAYBACK,
    REALTIME_AUDIO_IN,
    REPLIES,
    SPEECH,
    TOOLS,
    TRANSCRIPTS,
)
from voicebus_runtime.agents import AgentDirectory
from voicebus_runtime.bus import consumer_options, make_broker, publish
from voicebus_runtime.control import CallControl
from voicebus_runtime.deadletters import DeadLetters
from voicebus_runtime.lanes import CallLanes
from voicebus_runtime.metrics import exposition
from voicebus_runtime.redis import connect as connect_redis
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.service import worker_app
from voicebus_runtime.settings import BusSettings
from voicebus_sql.engine import create_engine, redacted

SERVICE = "agent"
AgentInput = Annotated[
    CallStarted
    | CallEnded
    | CallStatusChanged
    | CallAnsweredBy
    | DtmfReceived
    | FinalTranscript
    | ReplyPlaybackStarted
    | ReplyPaused
    | SpeechStarted
    | SpeechStopped
    | InboundAudioFrame,
    Field(discriminator="type"),
]
"""Every event of the calls, speech, transcripts and playback topics (those not acted on are
skipped), and the audio of realtime calls."""
log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 10.0
"""How long a stopping worker lets the replies under way finish (their offsets then commit)."""
CALLS_REMEMBERED = 10_000
"""Calls whose agent this worker keeps in memory; the oldest are forgotten first."""


class Agent:
    """One agent worker: what it does with each event of its calls, published on `broker`.

    A call's events are handled one at a time, in its lane of `lanes` (different calls' at the
    same time); a keypad entry submitted by its timer, a held turn or greeting released by
    theirs, wait their turn in the same lane, so a call's turns never interleave in its history.
    """

    def __init__(
        self,
        *,
        broker: KafkaBroker,
        store: ConversationStore,
        control: CallControl,
        registry: CallRegistry,
        profiles: Profiles,
        settings: AgentSettings,
        lanes: CallLanes,
        realtime: RealtimeCalls,
    ) -> None:
        self._broker = broker
        self._realtime = realtime
        self._store = store
        self._control = control
        self._registry = registry
        self._profiles = profiles
        self._agent_of: dict[str, str] = {}
        """The agent of each call this worker saw start; others are looked up in Redis."""
        self._keypad = Keypad(pause_s=settings.dtmf_timeout_ms / 1000, on_pause=self._keys_paused)
        self._held = HeldTurns(
            wait_s=settings.unfinished_turn_wait_ms / 1000, on_quiet=self._caller_quiet
        )
        self._machines = AnsweringMachines(on_timeout=self._no_decision)
        self._lanes = lanes

    async def handle(self, env: Envelope[AgentInput]) -> None:
        """Act on one event, in its call's lane (`CallLanes.submit` runs it there)."""
        if await self._realtime_took(env):
            return
        match env.event:
            case CallStarted() as started:
                await self._started(env, started)
            case CallAnsweredBy(answered_by=answered_by):
                if held := self._machines.decided(env.call_id, answered_by):
                    await self._answered(env.call_id, held, answered_by)
            case CallEnded():
                self._agent_of.pop(env.call_id, None)
                self._keypad.forget(env.call_id)
                self._held.call_ended(env.call_id)
                self._machines.call_ended(env.call_id)
            case SpeechStarted(turn_id=turn_id):
                self._held.speech_started(env.call_id, turn_id)
            case DtmfReceived(digit=key):
                if entry := self._keypad.press(env.call_id, key, event_id=env.event_id):
                    await self._answer_keys(env.call_id, entry)
            case ReplyPaused() as paused:
                await self._conversation(env.call_id).pause(paused)
            case FinalTranscript() as transcript:
                self._held.heard(env.call_id, transcript.turn_id)
                if self._machines.waiting(env.call_id):
                    log.info(
                        "call %s turn %s: heard before it is known who answered, not answered",
                        env.call_id,
                        transcript.turn_id,
                    )
                    return
                await self._hear(env, transcript)

    async def _realtime_took(self, env: Envelope[AgentInput]) -> bool:
        """Whether `env` is a realtime call's, which its speech-to-speech model acts on."""
        match env.event:
            case CallStarted(pipeline="realtime", agent_id=agent_id):
                self._remember_agent(env.call_id, agent_id)
                await self._realtime.started(env)  # type: ignore[arg-type]  # narrowed
            case InboundAudioFrame():
                await self._realtime.heard(env)  # type: ignore[arg-type]  # narrowed
            case ReplyPaused() if self._realtime.holds(env.call_id):
                await self._realtime.paused(env)  # type: ignore[arg-type]  # narrowed
            case FinalTranscript() | SpeechStarted() | SpeechStopped() if self._realtime.holds(
                env.call_id
            ):
                pass  # published by this worker's realtime call: the model takes turns itself
            case CallEnded() if self._realtime.holds(env.call_id):
                await self._realtime.ended(env.call_id)
                self._agent_of.pop(env.call_id, None)
            case _:
                return False
        return True

    def close(self) -> None:
        """Stop the timers: a half-typed entry, a held turn or a greeting waiting for who
        answered is lost with the worker."""
        self._keypad.close()
        self._held.close()
        self._machines.close()

    def _conversation(self, call_id: str) -> Conversation:
        return Conversation(call_id=call_id, store=self._store)

    async def _profile(self, call_id: str) -> Profile:
        """How the call's agent behaves; the agent comes from the call's start, or from its
        route in Redis when another worker saw it start."""
        agent_id = self._agent_of.get(call_id)
        if agent_id is None and (route := await self._registry.lookup(call_id)) is not None:
            agent_id = self._remember_agent(call_id, route.agent_id)
        return self._profiles.of(agent_id)

    def _remember_agent(self, call_id: str, agent_id: str) -> str:
        self._agent_of[call_id] = agent_id
        if len(self._agent_of) > CALLS_REMEMBERED:  # calls whose end went to another worker
            del self._agent_of[next(iter(self._agent_of))]
        return agent_id

    async def _speak(self, call_id: str, reply: Reply, *, cause: UUID, stamps: StageStamps) -> None:
        sentences: list[str] = []
        async for chunk in chunks_of(reply):
            if chunk.seq == 0:
                stamps = stamps.stamp(reply_first_text=time.time())
            event_id = derived_id(cause, f"reply-{chunk.seq}")
            env = envelope(
                chunk, call_id=call_id, producer=SERVICE, stamps=stamps, event_id=event_id
            )
            await publish(self._broker, REPLIES, env)
            if not chunk.last:
                sentences.append(chunk.text)
        await self._conversation(call_id).said(reply.reply_id, sentences)

    async def _started(self, env: Envelope[AgentInput], started: CallStarted) -> None:
        """Greet the caller; on an outbound phone call of an agent that listens for answering
        machines, once it is known who answered."""
        self._remember_agent(env.call_id, started.agent_id)
        voicemail = self._profiles.of(started.agent_id).voicemail
        if started.direction == "outbound" and started.transport == "twilio" and voicemail.detect:
            held = HeldGreeting(agent_id=started.agent_id, cause=env.event_id, stamps=env.stamps)
            wait_s = voicemail.decision_timeout_ms / 1000
            answered_by = self._machines.hold(env.call_id, held, wait_s=wait_s)
            if answered_by is None:
                log.info("call %s started: greeting once it is known who answered", env.call_id)
                return
            await self._answered(env.call_id, held, answered_by)
            return
        await self._greet(env.call_id, started.agent_id, cause=env.event_id, stamps=env.stamps)

    async def _greet(
        self, call_id: str, agent_id: str, *, cause: UUID, stamps: StageStamps
    ) -> None:
        log.info("call %s (agent %s): greeting", call_id, agent_id)
        reply = self._conversation(call_id).greet(self._profiles.of(agent_id).greeting)
        await self._speak(call_id, reply, cause=cause, stamps=stamps)

    async def _answered(self, call_id: str, held: HeldGreeting, answered_by: AnsweredBy) -> None:
        """Greet a person, leave the message on a machine, or hang up."""
        voicemail = self._profiles.of(held.agent_id).voicemail
        action = verdict(answered_by, has_message=voicemail.message is not None)
        log.info("call %s answered by %s: %s", call_id, answered_by, action.replace("_", " "))
        if action == "greet":
            await self._greet(call_id, held.agent_id, cause=held.cause, stamps=held.stamps)
            return
        after_reply = None
        if voicemail.message is not None and action == "leave_message":
            reply = self._conversation(call_id).leave_message(voicemail.message)
            await self._speak(call_id, reply, cause=held.cause, stamps=held.stamps)
            after_reply = reply.reply_id
        hang_up = HangUp(reason=f"answered by {answered_by}", after_reply=after_reply)
        await self._tell_gateway(call_id, hang_up, cause=held.cause)

    async def _no_decision(self, call_id: str) -> None:
        async with self._lanes.lane(call_id):
            if held := self._machines.take(call_id):
                log.info("call %s: who answered is still not known: greeting", call_id)
                await self._greet(call_id, held.agent_id, cause=held.cause, stamps=held.stamps)

    async def _answer(
        self, call_id: str, *, turn_id: str, text: str, cause: UUID, stamps: StageStamps
    ) -> None:
        if not text.strip():
            log.info("call %s turn %s: nothing heard, no reply", call_id, turn_id)
            return
        responder = (await self._profile(call_id)).responder
        reply = await self._conversation(call_id).answer(
            turn_id=turn_id, caller_text=text, responder=responder
        )
        await self._speak(call_id, reply, cause=cause, stamps=stamps)

    async def _hear(self, env: Envelope[AgentInput], transcript: FinalTranscript) -> None:
        paused = await self._conversation(env.call_id).paused_reply()
        profile = await self._profile(env.call_id)
        match settle(transcript, paused, backchannels=profile.backchannels):
            case Resume() as resumed:
                await self._resume(env.call_id, transcript, resumed, cause=env.event_id)
                return
            case Interrupt() as interrupted:
                await self._cancel(env, interrupted)
                await self._answer_turn(env.call_id, self._turn_of(env, transcript))
                return
        held = self._held.take(env.call_id)
        turn = self._turn_of(env, transcript, after=held)
        if not sounds_finished(turn.text):
            log.info("call %s turn %s trails off: holding it", env.call_id, turn.turn_id)
            self._held.hold(env.call_id, turn, wait_s=profile.unfinished_turn_wait_s)
            return
        await self._answer_turn(env.call_id, turn)

    @staticmethod
    def _turn_of(
        env: Envelope[AgentInput], transcript: FinalTranscript, *, after: HeldTurn | None = None
    ) -> HeldTurn:
        """The caller's turn this transcript ends, joined to the unfinished one before it."""
        text = transcript.text.strip()
        if after is not None:
            text = f"{after.text} {text}".strip()
        return HeldTurn(
            turn_id=transcript.turn_id, text=text, cause=env.event_id, stamps=env.stamps
        )

    async def _answer_turn(self, call_id: str, turn: HeldTurn) -> None:
        await self._answer(
            call_id, turn_id=turn.turn_id, text=turn.text, cause=turn.cause, stamps=turn.stamps
        )

    async def _caller_quiet(self, call_id: str) -> None:
        async with self._lanes.lane(call_id):
            if turn := self._held.take(call_id):
                log.info(
                    "call %s turn %s: the caller stayed quiet, answering", call_id, turn.turn_id
                )
                await self._answer_turn(call_id, turn)

    async def _resume(
        self, call_id: str, transcript: FinalTranscript, resumed: Resume, *, cause: UUID
    ) -> None:
        """Let the reply the caller spoke over carry on: their sound is no turn of the talk."""
        # Counts, not words: what callers say stays out of the logs.
        log.info(
            "call %s turn %s: %s (%d chars, %s ms) over reply %s, no interruption: resuming",
            call_id,
            transcript.turn_id,
            resumed.why,
            len(transcript.text),
            transcript.duration_ms,
            resumed.pause.reply_id,
        )
        await self._tell_gateway(call_id, ResumePlayback(), cause=cause)
        await self._conversation(call_id).settle(resumed.pause)

    async def _cancel(self, env: Envelope[AgentInput], interrupted: Interrupt) -> None:
        """Stop the reply the caller cut into, at the gateway and at TTS, and keep in the history
        only what the caller heard of it."""
        reply_id = interrupted.pause.reply_id
        heard = interrupted.heard_text
        log.info(
            "call %s: reply %s interrupted, %d chars of it heard", env.call_id, reply_id, len(heard)
        )
        await self._tell_gateway(env.call_id, CancelReply(reply_id=reply_id), cause=env.event_id)
        # The event carries the end of what was heard, where the caller cut in.
        cancelled = ReplyCancelled(reply_id=reply_id, heard_text=heard[-MAX_TEXT_CHARS:])
        event_id = derived_id(env.event_id, f"cancel-{reply_id}")
        out = envelope(
            cancelled, call_id=env.call_id, producer=SERVICE, stamps=env.stamps, event_id=event_id
        )
        await publish(self._broker, REPLIES, out)
        talk = self._conversation(env.call_id)
        await talk.heard(reply_id, heard)
        await talk.settle(interrupted.pause)

    async def _tell_gateway(
        self, call_id: str, command: ResumePlayback | CancelReply | HangUp, *, cause: UUID
    ) -> None:
        if not await self._control.send(call_id, command, cause=cause):
            log.warning("call %s is not live on any gateway: %s not sent", call_id, command.type)

    async def _answer_keys(self, call_id: str, entry: KeypadEntry) -> None:
        turn_id = entry.turn_id(call_id)
        log.info("call %s turn %s: %d keys typed", call_id, turn_id, len(entry.keys))
        await self._answer(
            call_id, turn_id=turn_id, text=entry.text, cause=entry.ended_by, stamps=StageStamps()
        )

    async def _keys_paused(self, call_id: str) -> None:
        async with self._lanes.lane(call_id):
            if entry := self._keypad.take(call_id):
                await self._answer_keys(call_id, entry)


def responder_for(
    settings: AgentSettings,
    models: ModelResponders,
    *,
    knowledge: KnowledgeBases | None,
    workflows_of: WorkflowsFactory,
    embedder: Embedder,
) -> Responder:
    """The service's model (VOICEBUS_AGENT_LLM_MODEL); without one, the offline demo agent
    (or the echo, asked for, or without knowledge bases)."""
    model = settings.service_model()
    if model is None:
        if not settings.answers_as_demo or knowledge is None:
            log.info("no LLM configured (VOICEBUS_AGENT_LLM_MODEL): echoing the caller")
            return AcknowledgingResponder()
        log.info("no LLM configured (VOICEBUS_AGENT_LLM_MODEL): the offline demo agent answers")
        demo = demo_files()
        return OfflineResponder(
            embedder=embedder,
            knowledge=knowledge,
            knowledge_base=DEMO_KNOWLEDGE_BASE,
            intents=demo.intents,
            workflow=workflows_of(demo.workflow, {}),
        )
    log.info("LLM %s at %s", model.model, model.base_url or "OpenAI")
    return models(model, settings.system_prompt)


class Worker(NamedTuple):
    """The agent worker's app, its broker, and the lanes its calls' events run in."""

    app: FastStream
    broker: KafkaBroker
    lanes: CallLanes


def build(
    *,
    settings: AgentSettings,
    bus: BusSettings,
    responder: Responder | None = None,
    knowledge: KnowledgeBases | None = None,
) -> Worker:
    client_id = f"{SERVICE}-{bus.instance_id}"
    broker = make_broker(bus.kafka_bootstrap, client_id=client_id)
    app = worker_app(broker, service=SERVICE, bus=bus)
    redis = connect_redis(bus.redis_url)
    registry = CallRegistry(redis)
    control = CallControl(broker=broker, registry=registry, producer=SERVICE)
    agents = AgentDirectory()
    agents.follow(broker)
    http = httpx.AsyncClient()
    record = actions_recorder(broker)
    models = ModelResponders(
        settings, call_tools=CallTools(control), http=http, record=record, knowledge=knowledge
    )
    realtime_key = settings.realtime_api_key
    speech_to_speech = OpenAIRealtime(
        base_url=settings.realtime_base_url,
        api_key=None if realtime_key is None else realtime_key.get_secret_value(),
    )
    states = RedisWorkflowStates(redis=redis, ttl_s=settings.history_ttl_s)

    def workflows_of(workflow: Workflow, variables: Mapping[str, str]) -> Workflows:
        flow = Flow(workflow, defaults=variables)
        return Workflows(flow, states=states, record=record, control=control)

    embedder = E5Embedder()
    lanes = CallLanes(dead_letters=DeadLetters(broker, consumer=client_id))
    store = RedisConversationStore(redis=redis, ttl_s=settings.history_ttl_s)
    realtime = RealtimeCalls(
        broker=broker,
        connector=speech_to_speech,
        store=store,
        registry=registry,
        control=control,
        agent_of=agents.get,
        toolbox_of=lambda agent: (
            (
                models.tools(http_tools=agent.tools, knowledge=agent.knowledge_base)
                if agent is not None
                else models.tools()
            ).toolbox
        ),
        default_instructions=settings.system_prompt,
        default_greeting=settings.greeting,
    )
    agent = Agent(
        broker=broker,
        store=store,
        control=control,
        registry=registry,
        profiles=Profiles(
            settings=settings,
            agents=agents,
            responder=responder
            or responder_for(
                settings,
                models,
                knowledge=knowledge,
                workflows_of=workflows_of,
                embedder=embedder,
            ),
            responder_of=models,
            offline_of=OfflineResponders(embedder=embedder, knowledge=knowledge),
            workflows_of=workflows_of,
        ),
        settings=settings,
        lanes=lanes,
        realtime=realtime,
    )

    # One subscriber for every topic: one consumer-group join at start, not one per topic.
    @broker.subscriber(
        CALLS.name,
        SPEECH.name,
        TRANSCRIPTS.name,
        PLAYBACK.name,
        REALTIME_AUDIO_IN.name,
        **consumer_options(
            SERVICE,
            fetch_max_wait_ms=bus.kafka_fetch_max_wait_ms,
            commit="by_lanes",
            session_timeout_ms=bus.kafka_session_timeout_ms,
        ),
    )
    async def on_calls_transcripts_and_playback(
        env: Envelope[AgentInput], message: KafkaMessage
    ) -> None:
        await lanes.submit(message, env.call_id, partial(agent.handle, env))

    @app.on_shutdown
    async def finish_what_is_under_way() -> None:
        agent.close()
        try:
            await asyncio.wait_for(lanes.idle(), timeout=SHUTDOWN_GRACE_S)
        except TimeoutError:
            log.warning("stopped with replies still under way (they are handled again)")

    @app.after_shutdown
    async def close_clients() -> None:
        await realtime.close()
        await speech_to_speech.aclose()
        await redis.aclose()
        await models.aclose()
        await http.aclose()

    return Worker(app, broker, lanes)


def actions_recorder(broker: KafkaBroker) -> ActionLog:
    """Puts each tool call and answer, and each workflow step, on `voicebus.tools`."""

    async def record(call_id: str, event: ToolCalled | ToolReturned | WorkflowProgressed) -> None:
        await publish(broker, TOOLS, envelope(event, call_id=call_id, producer=SERVICE))

    return record


def announcer(broker: KafkaBroker) -> Announce:
    """Puts a change of the agent catalog on `voicebus.agents`, keyed by the agent's id."""

    async def announce(change: AgentConfigured | AgentRemoved) -> None:
        agent_id = change.agent.agent_id if isinstance(change, AgentConfigured) else change.agent_id
        await publish(broker, AGENTS, envelope(change, call_id=agent_id, producer=SERVICE))

    return announce


def create_service(
    *,
    settings: AgentSettings,
    catalog_settings: CatalogSettings,
    bus: BusSettings,
    responder: Responder | None = None,
) -> FastAPI:
    """The agent service: the worker, and the agents API over the catalog; the worker starts
    and stops with the API. Every stored agent is announced again at start, so services that
    start later, and a bus that lost its catalog, learn all of them."""
    knowledge = KnowledgeBases(qdrant=catalog_settings.qdrant, embedder=E5Embedder())
    worker, broker, _ = build(settings=settings, bus=bus, responder=responder, knowledge=knowledge)
    engine = create_engine(catalog_settings.database_url)
    catalog = SqlAgentCatalog(engine)
    announce = announcer(broker)

    # Before the worker joins the bus and beats: the stack is not ready until the demo can answer.
    @worker.on_startup
    async def load_the_demo_knowledge() -> None:
        if not settings.answers_as_demo:
            return
        if not await knowledge.documents(DEMO_KNOWLEDGE_BASE):
            document = await knowledge.add(
                DEMO_KNOWLEDGE_BASE, DEMO_DOCUMENT, demo_files().knowledge
            )
            log.info("demo knowledge base loaded: %d passages", document.passages)

    @worker.after_startup
    async def announce_every_agent() -> None:
        try:
            agents = await catalog.list()
        except SQLAlchemyError as exc:
            raise RuntimeError(
                f"cannot read the agent catalog at {redacted(catalog_settings.database_url)} "
                f"(run `voicebus-agent migrate` first?): {exc}"
            ) from exc
        for agent in agents:
            await announce(AgentConfigured(agent=agent))
        log.info("%d agents announced", len(agents))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await worker.start()
        try:
            yield
        finally:
            await worker.stop()
            await engine.dispose()
            await knowledge.close()

    api = FastAPI(title="voicebus agent service", lifespan=lifespan)

    @api.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    api.include_router(agents_router(catalog, announce))
    api.include_router(knowledge_router(knowledge))
    return api
