// The gateway's public API as the pages use it: JSON both ways, refusals as ApiError, and the
// live feed (Server-Sent Events) as a stream of updates. Every request carries the API key this
// tab signed in with, if any (docs/security.md); when the API asks for one (401), the event
// KEY_NEEDED goes to the window, and the shell asks for a key.

const KEY_STORE = "voicebus.apiKey";

/** Sent to `window` when the API refused a request for want of a valid key. */
export const KEY_NEEDED = "voicebus:key-needed";

/** The API key this tab signed in with (kept in sessionStorage: gone with the tab), or null. */
export function apiKey() {
  return sessionStorage.getItem(KEY_STORE);
}

/** Sign this tab in with `key`, or out (null). */
export function useKey(key) {
  if (key) sessionStorage.setItem(KEY_STORE, key);
  else sessionStorage.removeItem(KEY_STORE);
}

/** `headers` and, when this tab has a key, the key: the only way it is ever sent. */
function withKey(headers) {
  const key = apiKey();
  return key ? { ...headers, authorization: `Bearer ${key}` } : headers;
}

/** Tell the shell if `response` asks for a key (none was sent, or it was refused). */
function checkKey(response) {
  if (response.status === 401) window.dispatchEvent(new CustomEvent(KEY_NEEDED));
}

/** A request the API refused; `detail` is FastAPI's: a message, or the invalid fields. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `The request was refused (${status}).`);
    this.status = status;
    /** A string, or a list of {loc, msg}: where in the request each problem is, and what. */
    this.detail = detail;
  }
}

/** `path` with the query `params` whose values are not empty. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Call the API: `json` is sent as the JSON body, `form` as a multipart one. Resolves to the
 * answer's JSON (null for an empty answer); rejects with ApiError when the API refuses.
 */
export async function api(path, { method = "GET", json, form, signal } = {}) {
  const headers = { accept: "application/json" };
  let body = form;
  if (json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(path, { method, headers: withKey(headers), body, signal });
  checkKey(response);
  const answer = parsed(await response.text());
  if (!response.ok) throw new ApiError(response.status, answer?.detail ?? response.statusText);
  return answer;
}

/** Fetch `path` as a Blob (a recording), with the key; rejects with ApiError when refused. */
export async function apiBlob(path, { signal } = {}) {
  const response = await fetch(path, { headers: withKey({}), signal });
  checkKey(response);
  if (!response.ok) throw new ApiError(response.status, response.statusText);
  return response.blob();
}

function parsed(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text; // a proxy's error page, say
  }
}

/**
 * How long analytics may take to record what happens (it reads the bus in the background):
 * what happened just before a page started following the feed may reach the record only then.
 */
const RECORD_LAG_MS = 2_000;

/** Run `then` once analytics has recorded what happened until now, unless `signal` aborts. */
export function whenRecorded(signal, then) {
  const timer = setTimeout(then, RECORD_LAG_MS);
  signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
}

/** How long to wait before following a lost feed again, unless the feed says (`retry:`). */
const RECONNECT_MS = 2_000;

/**
 * Follow a live feed until `signal` aborts: `update` gets each update about calls, and `reload`
 * is called to load what the page shows from the API: when the feed starts (on each connection,
 * reconnections included) or lost updates for a reader too slow, and once more when analytics
 * has recorded what happened before.
 *
 * The feed is read with fetch, not EventSource, which cannot send the API key in a header (and
 * a key, or anything standing for it, in the URL would be logged and kept wherever URLs are).
 * Like EventSource, it follows the feed again after losing it; a refusal (4xx) ends it.
 */
export async function follow(path, { update, reload }, signal) {
  let wait = RECONNECT_MS;
  const handle = (data) => {
    const message = JSON.parse(data);
    if (message.type === "feed.started" || message.type === "feed.lagged") {
      reload();
      whenRecorded(signal, reload);
    } else {
      update(message);
    }
  };
  while (!signal.aborted) {
    try {
      const response = await fetch(path, { headers: withKey({ accept: "text/event-stream" }), signal });
      checkKey(response);
      if (response.status >= 400 && response.status < 500) return;
      if (response.ok) {
        await readEvents(response.body, handle, (retry) => (wait = retry));
      }
    } catch {
      if (signal.aborted) return;
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** Read Server-Sent Events from `body` until it ends: each event's data to `handle`, each
 * `retry:` to `onRetry`; comments (keep-alives) are skipped. */
async function readEvents(body, handle, onRetry) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = pending.indexOf("\n\n")) >= 0) {
      const block = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        else if (line.startsWith("retry:")) onRetry(Number(line.slice(6)) || RECONNECT_MS);
      }
      if (data.length) handle(data.join("\n"));
    }
  }
}
