"""Workflows as plain logic: moving through the graph, collecting variables, reading them from
the caller's words, and where a call is, kept in Redis for the next worker."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from voicebus_agent.workflow.flow import Flow, WorkflowState
from voicebus_agent.workflow.state import MemoryWorkflowStates, RedisWorkflowStates
from voicebus_agent.workflow.values import values_heard
from voicebus_contracts.agents import Transition, Variable, Workflow, WorkflowNode

SIZE = Variable(name="size", description="pizza size", choices=("small", "large"))
COUNT = Variable(name="count", description="how many pizzas", kind="number")
ORDER = Workflow(
    start="menu",
    nodes=(
        WorkflowNode(id="menu", transitions=(Transition(to="order", when="they order"),)),
        WorkflowNode(
            id="order",
            say="Let's take your order.",
            collect=(SIZE, COUNT),
            transitions=(
                Transition(to="party", if_equals={"size": "large", "count": "10"}),
                Transition(to="confirm", once_collected=True),
            ),
        ),
        WorkflowNode(id="party", say="A party! Ten large pizzas.", end_call=True),
        WorkflowNode(
            id="confirm",
            say="{count} {size} pizzas, {missing}coming up.",
            transitions=(Transition(to="menu", once_collected=True),),
        ),
    ),
)


def test_a_caller_driven_transition_enters_the_node_and_nothing_more() -> None:
    flow = Flow(ORDER)
    steps = flow.go(flow.start(), "order")
    assert [n.id for n in steps.entered] == ["order"]
    assert [v.name for v in flow.missing(steps.state)] == ["size", "count"]
    with pytest.raises(ValueError, match="no way to 'party'"):
        flow.go(steps.state, "party")


def test_values_are_fitted_or_refused_and_a_full_node_moves_on_by_itself() -> None:
    flow = Flow(ORDER)
    at_order = flow.go(flow.start(), "order").state
    half = flow.collect(at_order, {"size": "LARGE", "count": "many", "topping": "ham"})
    assert half.state.variables == {"size": "large"}
    assert half.refused == ("count: 'many' is not a number", "topping: not collected at this step")
    assert half.entered == ()
    # Complete: the node's own data-driven transition fires, then the next node's (a chain),
    # and the chain stops where it started rather than spinning.
    done = flow.collect(half.state, {"count": "2"})
    assert [n.id for n in done.entered] == ["confirm", "menu"]
    assert done.state.node == "menu"
    assert flow.say(ORDER.node("confirm"), done.state) == "2 large pizzas, coming up."


def test_a_value_test_beats_the_transitions_after_it() -> None:
    flow = Flow(ORDER)
    at_order = flow.go(flow.start(), "order").state
    party = flow.collect(at_order, {"size": "large", "count": "10"})
    assert [n.id for n in party.entered] == ["party"]
    assert party.entered[-1].end_call


def test_agent_variables_are_where_every_call_starts() -> None:
    flow = Flow(ORDER, defaults={"size": "small"})
    at_order = flow.go(flow.start(), "order").state
    assert [v.name for v in flow.missing(at_order)] == ["count"]


@pytest.mark.parametrize(
    ("said", "asking", "heard"),
    [
        ("A large one please", None, {"size": "large"}),
        ("small or large, not sure", None, {}),
        ("three large pizzas", None, {"size": "large", "count": "3"}),
        ("we are 12", None, {"count": "12"}),
        ("see you on Saturday the 3rd", None, {"day": "Saturday"}),
        ("next Friday, for two", None, {"day": "next Friday", "count": "2"}),
        ("June 3rd for 4", None, {"day": "June 3rd", "count": "4"}),
        ("the 14th of July", None, {"day": "the 14th of July"}),
        ("tomorrow", None, {"day": "tomorrow"}),
        ("Anna Lindqvist.", "name", {"name": "Anna Lindqvist"}),
        ("Anna Lindqvist.", None, {}),
    ],
)
def test_values_are_read_from_what_callers_say(
    said: str, asking: str | None, heard: dict[str, str]
) -> None:
    variables = (
        SIZE,
        COUNT,
        Variable(name="day", description="the day", kind="date"),
        Variable(name="name", description="their name"),
    )
    assert values_heard(variables, said, asking=asking) == heard


def test_a_number_goes_only_to_the_variable_asked_for_when_several_want_one() -> None:
    adults = Variable(name="adults", description="adults", kind="number")
    children = Variable(name="children", description="children", kind="number")
    assert values_heard((adults, children), "two", asking=None) == {}
    assert values_heard((adults, children), "two", asking="children") == {"children": "2"}


def test_a_choice_is_named_by_its_last_word_or_in_the_plural() -> None:
    boat = Variable(name="boat", description="boat", choices=("sailing dinghy", "motor boat"))
    assert values_heard((boat,), "two dinghies please", asking=None) == {"boat": "sailing dinghy"}
    assert values_heard((boat,), "the motor boats", asking=None) == {"boat": "motor boat"}
    rowing = Variable(name="boat", description="boat", choices=("rowing boat", "motor boat"))
    assert values_heard((rowing,), "a rowing boat", asking=None) == {"boat": "rowing boat"}
    assert values_heard((rowing,), "any boat", asking=None) == {}


async def test_a_reply_made_again_starts_from_where_the_call_was_when_it_first_began(
    redis: Redis,
) -> None:
    call_id = f"test-{uuid.uuid4()}"
    for states in (RedisWorkflowStates(redis=redis, ttl_s=60), MemoryWorkflowStates()):
        assert await states.begin(call_id, "t1:reply") is None  # before the first turn
        moved = WorkflowState(node="order", variables={"size": "large"})
        await states.save(call_id, moved)
        assert await states.begin(call_id, "t1:reply") is None  # t1 again: from the start
        assert await states.begin(call_id, "t2:reply") == moved
        await states.save(call_id, WorkflowState(node="menu"))
        assert await states.begin(call_id, "t2:reply") == moved
    await redis.delete(f"voicebus:call:{call_id}:workflow")
