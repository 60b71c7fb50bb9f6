"""The demo content shipped with the agent: the knowledge base, the questions that measure retrieval
on it, and the intents of the offline demo agent.

The questions only measure retrieval fairly if each one has a single clear home in the document:
its key phrases must be in the section it names, so that a checker can tell whether a retrieved
passage answers it. An edit to the document that moves or rewords a fact breaks that silently,
which is what these tests are for.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import voicebus_agent.demo
from voicebus_agent.offline import demo_files

DEMO = Path(voicebus_agent.demo.__file__).parent
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
SNAKE_CASE = re.compile(r"^[a-z]+(_[a-z]+)*$")


def _load_json(name: str) -> Any:
    return json.loads((DEMO / name).read_text(encoding="utf-8"))


def _normalised(text: str) -> str:
    """Lower-cased, with every run of whitespace made one space: how a passage is compared."""
    return " ".join(text.split()).casefold()


def _sections(markdown: str) -> list[tuple[str, str]]:
    """Each heading with the text under it, up to the next heading of any level."""
    sections: list[tuple[str, list[str]]] = []
    for line in markdown.splitlines():
        heading = HEADING.match(line)
        if heading:
            sections.append((heading["title"], []))
        elif sections:
            sections[-1][1].append(line)
        else:
            assert not line.strip(), f"text before the first heading: {line!r}"
    return [(title, "\n".join(lines).strip()) for title, lines in sections]


@pytest.fixture(scope="module")
def knowledge() -> str:
    return (DEMO / "knowledge.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def section_texts(knowledge: str) -> dict[str, str]:
    """The sections that have text (the title heading has none), by heading."""
    return {title: text for title, text in _sections(knowledge) if text}


@pytest.fixture(scope="module")
def questions() -> list[dict[str, Any]]:
    loaded = _load_json("questions.json")
    assert isinstance(loaded, list)
    return loaded


@pytest.fixture(scope="module")
def intents() -> list[dict[str, Any]]:
    loaded = _load_json("intents.json")
    assert isinstance(loaded, list)
    return loaded


def test_the_parser_splits_sections_at_headings_of_any_level() -> None:
    markdown = "# Title\n\n## Pets\nDogs are welcome.\n\n### Cats\nNo cats.\n## Empty\n"
    assert _sections(markdown) == [
        ("Title", ""),
        ("Pets", "Dogs are welcome."),
        ("Cats", "No cats."),
        ("Empty", ""),
    ]


def test_the_knowledge_headings_are_unique(knowledge: str) -> None:
    titles = [title for title, _ in _sections(knowledge)]
    assert len(titles) == len(set(titles)), titles


def test_no_line_of_the_knowledge_is_longer_than_400_characters(knowledge: str) -> None:
    lines = enumerate(knowledge.splitlines(), start=1)
    assert [number for number, line in lines if len(line) > 400] == []


def test_every_question_is_well_formed(questions: list[dict[str, Any]]) -> None:
    for entry in questions:
        assert isinstance(entry, dict)
        assert set(entry) == {"question", "answer_contains", "section"}, entry
        assert isinstance(entry["question"], str)
        assert entry["question"].strip()
        assert isinstance(entry["section"], str)
        phrases = entry["answer_contains"]
        assert isinstance(phrases, list)
        assert 1 <= len(phrases) <= 3, entry
        assert all(isinstance(phrase, str) and phrase.strip() for phrase in phrases), entry


def test_there_are_30_distinct_questions(questions: list[dict[str, Any]]) -> None:
    asked = [_normalised(entry["question"]) for entry in questions]
    assert len(asked) == 30
    assert len(set(asked)) == len(asked)


def test_each_question_names_a_section_with_text(
    questions: list[dict[str, Any]], section_texts: dict[str, str]
) -> None:
    unknown = [entry["section"] for entry in questions if entry["section"] not in section_texts]
    assert unknown == []


def test_each_key_phrase_occurs_in_the_section_the_question_names(
    questions: list[dict[str, Any]], section_texts: dict[str, str]
) -> None:
    missing = [
        (entry["section"], phrase)
        for entry in questions
        for phrase in entry["answer_contains"]
        if _normalised(phrase) not in _normalised(section_texts.get(entry["section"], ""))
    ]
    assert missing == []


def test_no_question_contains_its_own_key_phrases(questions: list[dict[str, Any]]) -> None:
    """A question that repeats its answer's words would be found by word overlap alone."""
    given_away = [
        (entry["question"], phrase)
        for entry in questions
        for phrase in entry["answer_contains"]
        if _normalised(phrase) in _normalised(entry["question"])
    ]
    assert given_away == []


def test_every_section_is_asked_about(
    questions: list[dict[str, Any]], section_texts: dict[str, str]
) -> None:
    asked = {entry["section"] for entry in questions}
    assert sorted(set(section_texts) - asked) == []


def test_intents_are_well_formed(intents: list[dict[str, Any]]) -> None:
    assert 12 <= len(intents) <= 16
    for intent in intents:
        assert set(intent) == {"intent", "examples", "reply"}, intent
        assert SNAKE_CASE.match(intent["intent"]), intent["intent"]
        assert 5 <= len(intent["examples"]) <= 8, intent["intent"]
        assert all(isinstance(example, str) and example.strip() for example in intent["examples"])
        assert intent["reply"] is None or (
            isinstance(intent["reply"], str) and intent["reply"].strip()
        ), intent["intent"]


def test_intent_names_are_unique(intents: list[dict[str, Any]]) -> None:
    names = [intent["intent"] for intent in intents]
    assert len(names) == len(set(names)), names


def test_no_example_belongs_to_two_intents_or_to_an_intent_and_a_step(
    intents: list[dict[str, Any]],
) -> None:
    workflow = demo_files().workflow
    examples = [_normalised(e) for intent in intents for e in intent["examples"]]
    steps = {  # the same way out of several nodes (goodbye) has the same examples
        (t.to, _normalised(e))
        for node in workflow.nodes
        for t in node.transitions
        for e in t.examples
    }
    examples += [example for _, example in steps]
    assert sorted({example for example in examples if examples.count(example) > 1}) == []


def test_the_demo_workflow_books_a_boat_and_says_goodbye() -> None:
    workflow = demo_files().workflow
    booking = workflow.node("booking")
    assert [v.name for v in booking.collect] == ["boat", "day", "people"]
    assert workflow.node("goodbye").end_call
    assert {t.to for t in workflow.node(workflow.start).transitions} == {"booking", "goodbye"}


def test_some_intents_are_answered_from_the_knowledge(intents: list[dict[str, Any]]) -> None:
    from_knowledge = {intent["intent"] for intent in intents if intent["reply"] is None}
    assert {"opening_hours", "prices", "location", "cancellation", "lessons", "pets"} <= (
        from_knowledge
    )


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("greeting", ["harbor light"]),
        ("who_are_you", ["assistant"]),
        ("thanks", ["welcome"]),
        ("ask_for_human", ["transfer"]),
    ],
)
def test_the_conversational_intents_have_their_own_replies(
    intents: list[dict[str, Any]], name: str, words: list[str]
) -> None:
    replies = {intent["intent"]: intent["reply"] for intent in intents}
    reply = replies[name]
    assert isinstance(reply, str)
    assert [word for word in words if word not in _normalised(reply)] == []
