// A call from the browser: the microphone streamed up the gateway's `/web/call` socket and the
// agent's voice played back, in the web call protocol (docs/web-call.md).

import { api, withQuery } from "./api.js";

const WORKLETS = "/dashboard/worklets.js";
const RATE = 16000;

/** How loud a frame of PCM16 is, from 0 (silence) to 1. */
function level(samples) {
  let sum = 0;
  for (const sample of samples) sum += sample * sample;
  return Math.min(1, (4 * Math.sqrt(sum / samples.length)) / 0x8000);
}

export class WebCall {
  /**
   * `onMessage` gets each JSON message of the call (transcripts, the reply, its state...);
   * `onLevel(who, level)` how loud the caller ("caller") and the agent ("agent") are;
   * `onPlayed(ms)` how much of the agent's audio has played so far; `onEnd(reason)` is called
   * once, when the call is over.
   */
  constructor({ agentId, onMessage, onLevel, onPlayed, onEnd }) {
    this.agentId = agentId;
    this.handlers = { onMessage, onLevel, onPlayed, onEnd };
    this.live = false;
    this.playedSamples = 0;
    this.ending = "the connection closed";
  }

  /** Open the microphone and the call; call it from a click (browsers start audio only so). */
  async start() {
    this.context = new AudioContext();
    try {
      await this.context.audioWorklet.addModule(WORKLETS);
      this.microphone = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (failed) {
      this.release();
      throw failed;
    }
    if (this.released) {
      this.microphone.getTracks().forEach((track) => track.stop()); // given up while it opened
      return;
    }
    const capture = new AudioWorkletNode(this.context, "voicebus-microphone", { numberOfOutputs: 0 });
    this.context.createMediaStreamSource(this.microphone).connect(capture);
    this.player = new AudioWorkletNode(this.context, "voicebus-player", { outputChannelCount: [1] });
    this.player.connect(this.context.destination);

    // A token for this one call, got with the tab's key, just before it is used: it lasts a
    // minute, and the microphone's permission may take longer than that to be given.
    let token;
    try {
      ({ token } = await api("/api/web-calls", { method: "POST", json: { agent_id: this.agentId || null } }));
    } catch (failed) {
      this.release();
      throw failed;
    }
    if (this.released) return;
    const url = new URL(withQuery("/web/call", { agent_id: this.agentId, token }), location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    this.socket = new WebSocket(url);
    this.socket.binaryType = "arraybuffer";
    capture.port.onmessage = ({ data }) => this.#speak(data);
    this.player.port.onmessage = ({ data }) => this.#played(data);
    this.socket.onmessage = ({ data }) => this.#receive(data);
    this.socket.onclose = () => this.release();
  }

  /** Ask the gateway to end the call; it answers `call.ended` and closes the socket. */
  hangUp() {
    this.#send({ type: "hangup" });
  }

  #speak(frame) {
    if (!this.live || this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(frame); // 640 bytes: 20 ms, silence included
    this.handlers.onLevel("caller", level(new Int16Array(frame)));
  }

  #played({ mark, played }) {
    if (mark !== undefined) {
      this.#send({ type: "played", mark });
    } else {
      this.playedSamples += played;
      this.handlers.onPlayed((1000 * this.playedSamples) / RATE);
    }
  }

  #receive(data) {
    if (data instanceof ArrayBuffer) {
      const audio = new Int16Array(data);
      this.handlers.onLevel("agent", level(audio));
      this.player.port.postMessage(audio, [audio.buffer]);
      return;
    }
    const message = JSON.parse(data);
    switch (message.type) {
      case "call.started":
        this.live = true;
        break;
      case "mark":
        this.player.port.postMessage({ mark: message.name });
        break;
      case "clear":
        this.player.port.postMessage("clear");
        break;
      case "error":
        if (!this.live) this.ending = message.message; // the call was refused
        break;
      case "call.ended":
        this.ending = message.reason;
        break;
    }
    this.handlers.onMessage(message);
  }

  #send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  /** Close the socket, the microphone and the audio; tell how the call ended, once. */
  release() {
    if (this.released) return;
    this.released = true;
    this.live = false;
    this.socket?.close();
    this.microphone?.getTracks().forEach((track) => track.stop());
    this.context.close();
    this.handlers.onEnd(this.ending);
  }
}
