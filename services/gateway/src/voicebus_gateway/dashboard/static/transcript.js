// A live transcript: a line per caller turn (drafted by its partial transcripts, settled by its
// final one) and a line per agent reply (its pieces in order), in the order they began.
//
// It reads the web call protocol's messages (docs/web-call.md), whether they come from a call's
// own socket or from the live feed, and the turns of a call's record. Each line is keyed by its
// turn or reply id, so what arrives twice (a record loaded while the feed runs) changes nothing.

import { h } from "./ui.js";

const NOW = () => Date.now() / 1000;

export class Transcript {
  #lines = new Map(); // by turn or reply id

  constructor() {
    this.element = h("ol", { class: "transcript", "aria-live": "polite", "aria-relevant": "additions" });
  }

  /** Apply one message of the web call protocol (or of the live feed); others are ignored. */
  apply(message) {
    const at = message.at ?? NOW();
    switch (message.type) {
      case "speech.started":
        this.#line(message.turn_id, "caller", at);
        break;
      case "transcript.partial":
        this.#caller(message.turn_id, message.text, { at, partial: true });
        break;
      case "transcript.final":
        this.#caller(message.turn_id, message.text, { at, partial: false });
        break;
      case "reply.text":
        this.#line(message.reply_id, "agent", at).pieces.set(message.seq, message.text);
        this.#render(message.reply_id);
        break;
      case "reply.cancelled":
        this.#line(message.reply_id, "agent", at).heard = message.heard_text;
        this.#render(message.reply_id);
        break;
    }
  }

  /** Show the turns of a call's record (`GET /api/calls/{id}`: `turns`). */
  addTurns(turns) {
    for (const turn of turns) {
      const when = turn.started_at ?? turn.ended_at; // a caller turn is known by its end
      const at = when ? Date.parse(when) / 1000 : NOW();
      if (turn.role === "user") {
        this.#caller(turn.turn_id, turn.text, { at, partial: false });
      } else {
        const line = this.#line(turn.turn_id, "agent", at);
        line.recorded = turn.text;
        if (turn.interrupted) line.heard ??= turn.text;
        this.#render(turn.turn_id);
      }
    }
  }

  #caller(turnId, text, { at, partial }) {
    const line = this.#line(turnId, "caller", at);
    if (line.final !== null) return; // a partial that arrives late changes nothing
    if (!partial && !text.trim()) {
      this.#remove(turnId); // nothing intelligible was heard
      return;
    }
    if (partial) line.draft = text;
    else line.final = text;
    this.#render(turnId);
  }

  #line(key, role, at) {
    let line = this.#lines.get(key);
    if (line) return line;
    line = { key, role, at, draft: "", final: null, pieces: new Map(), recorded: null, heard: null };
    line.element = h("li", { class: `line ${role}`, "data-key": key },
      h("span", { class: "who" }, role === "caller" ? "Caller" : "Agent"),
      h("p", { class: "said" }));
    this.#lines.set(key, line);
    this.#place(line);
    this.#render(key);
    return line;
  }

  /** Put a new line among the others by when it began. */
  #place(line) {
    const after = [...this.#lines.values()].find((other) => other !== line && other.at > line.at);
    this.element.insertBefore(line.element, after?.element ?? null);
  }

  #remove(key) {
    this.#lines.get(key)?.element.remove();
    this.#lines.delete(key);
  }

  #render(key) {
    const line = this.#lines.get(key);
    const said = textOf(line);
    const unsettled = line.role === "caller" ? line.final === null : false;
    line.element.classList.toggle("unsettled", unsettled);
    line.element.classList.toggle("cut", line.heard !== null);
    line.element.querySelector(".said").textContent = said || (unsettled ? "…" : "");
    const list = this.element;
    if (list.scrollHeight - list.scrollTop - list.clientHeight < 80) list.scrollTop = list.scrollHeight;
  }
}

/**
 * What a line says: the caller's final words (or the latest draft); the agent's pieces in order
 * (after what the record held, when the feed began mid-reply), or, if the caller cut the reply
 * off, what they heard of it.
 */
function textOf(line) {
  if (line.role === "caller") return line.final ?? line.draft;
  if (line.heard !== null) return `${line.heard} —`;
  const pieces = [...line.pieces.entries()].sort(([a], [b]) => a - b).map(([, text]) => text);
  const recorded = line.pieces.has(0) ? "" : line.recorded ?? "";
  const after = pieces.filter((piece) => !recorded.includes(piece));
  return [recorded, ...after].filter((text) => text.trim()).join(" ");
}
