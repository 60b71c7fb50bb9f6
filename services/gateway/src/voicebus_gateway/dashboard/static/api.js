// The gateway's public API as the pages use it: JSON both ways, refusals as ApiError, and the
// live feed (Server-Sent Events) as a stream of updates.

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
  const response = await fetch(path, { method, headers, body, signal });
  const answer = parsed(await response.text());
  if (!response.ok) throw new ApiError(response.status, answer?.detail ?? response.statusText);
  return answer;
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

/**
 * Follow a live feed until `signal` aborts: `update` gets each update about calls, and `reload`
 * is called to load what the page shows from the API: when the feed starts (on each connection,
 * reconnections included) or lost updates for a reader too slow, and once more when analytics
 * has recorded what happened before.
 */
export function follow(path, { update, reload }, signal) {
  const source = new EventSource(path);
  source.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "feed.started" || message.type === "feed.lagged") {
      reload();
      whenRecorded(signal, reload);
    } else {
      update(message);
    }
  };
  signal.addEventListener("abort", () => source.close());
}
