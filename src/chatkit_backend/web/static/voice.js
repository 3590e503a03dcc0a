// Dictation: record the microphone with MediaRecorder, hand back the recording.

// Types the server accepts, best first; the browser records the first it supports.
const TYPES = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/ogg", "audio/mp4"];

export function supported() {
  return Boolean(navigator.mediaDevices?.getUserMedia && window.MediaRecorder);
}

function recordingType() {
  return TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || "";
}

/** Why recording could not start, as a sentence for the user. */
export function startError(err) {
  switch (err?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was denied: allow it for this site in the browser to dictate.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found.";
    case "NotReadableError":
      return "The microphone is in use by another program.";
    default:
      return `The microphone could not be started: ${err?.message || err}`;
  }
}

/** One recording: start() asks for the microphone, stop() resolves with the audio Blob. */
export class Recording {
  constructor() {
    this.stream = null;
    this.recorder = null;
    this.chunks = [];
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const type = recordingType();
    this.recorder = new MediaRecorder(this.stream, type ? { mimeType: type } : {});
    this.recorder.addEventListener("dataavailable", (event) => {
      if (event.data.size) this.chunks.push(event.data);
    });
    this.recorder.start();
  }

  stop() {
    return new Promise((resolve) => {
      const done = () => {
        this.release();
        resolve(new Blob(this.chunks, { type: this.recorder.mimeType || "audio/webm" }));
      };
      if (this.recorder.state === "inactive") done();
      else {
        this.recorder.addEventListener("stop", done, { once: true });
        this.recorder.stop();
      }
    });
  }

  /** Let go of the microphone (the browser's recording indicator goes out). */
  release() {
    for (const track of this.stream?.getTracks() || []) track.stop();
  }
}
