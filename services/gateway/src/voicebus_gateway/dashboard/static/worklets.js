// The audio worklets of a browser call (docs/web-call.md): the microphone, resampled to 16 kHz
// PCM16 in 20 ms frames; and the player of the agent's 16 kHz PCM16 at the context's own rate,
// reporting each mark once the audio before it has played.

const RATE = 16000;
const FRAME_SAMPLES = 320; // 20 ms at 16 kHz

class MicrophoneProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / RATE; // input samples per 16 kHz sample: 3 at 48 kHz, 2.76 at 44.1
    this.due = this.step;
    this.sum = 0;
    this.count = 0;
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0][0];
    if (!input) return true;
    for (const sample of input) {
      // Each 16 kHz sample is the mean of the input samples it stands for: a low-pass filter,
      // so sound above 8 kHz is damped rather than folded back into the speech band.
      this.sum += sample;
      this.count += 1;
      this.due -= 1;
      if (this.due <= 0) {
        this.push(this.sum / this.count);
        this.sum = 0;
        this.count = 0;
        this.due += this.step;
      }
    }
    return true;
  }

  push(sample) {
    this.frame[this.filled++] = Math.max(-1, Math.min(1, sample)) * 0x7fff;
    if (this.filled === FRAME_SAMPLES) {
      this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
      this.frame = new Int16Array(FRAME_SAMPLES);
      this.filled = 0;
    }
  }
}

class PlayerProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = RATE / sampleRate; // 16 kHz samples per output sample
    this.queue = []; // Int16Array chunks of agent audio and {mark} entries, in arrival order
    this.at = 0; // position in the first chunk, in 16 kHz samples
    this.port.onmessage = ({ data }) => {
      if (data === "clear") {
        this.queue = []; // the marks go too: they are never reported
        this.at = 0;
      } else {
        this.queue.push(data);
      }
    };
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    let played = 0;
    for (let i = 0; i < out.length; i++) {
      while (this.queue.length && !(this.queue[0] instanceof Int16Array)) {
        this.port.postMessage({ mark: this.queue.shift().mark }); // all before it has played
      }
      const chunk = this.queue[0];
      if (!chunk) {
        out[i] = 0; // nothing to play: silence
        continue;
      }
      const index = Math.floor(this.at);
      const fraction = this.at - index;
      const next = chunk[index + 1] ?? chunk[index];
      out[i] = (chunk[index] * (1 - fraction) + next * fraction) / 0x8000;
      this.at += this.step;
      if (this.at >= chunk.length) {
        this.at -= chunk.length;
        this.queue.shift();
        played += chunk.length;
      }
    }
    if (played) this.port.postMessage({ played });
    return true;
  }
}

registerProcessor("voicebus-microphone", MicrophoneProcessor);
registerProcessor("voicebus-player", PlayerProcessor);
