// The page of `ser serve`: record the microphone as WAV (or take a file), POST it to
// /predict, show the emotion, its probabilities and, for a long recording, its windows.
"use strict";

const MAX_RECORD_SECONDS = 600;
const SESSION_HEADER = "X-Ser-Session";
// One colour per class, in the model's class order (distinct for colour-blind readers too).
const PALETTE = ["#4477aa", "#66ccee", "#228833", "#ccbb44", "#ee6677", "#aa3377",
  "#bbbbbb", "#332288", "#882255", "#117733", "#999933", "#44aa99"];

const page = {
  classes: [],
  sessionsOffered: false,
  sessionId: null,
  recording: null, // {context, stream, node, chunks, started, timer}
};

const $ = (id) => document.getElementById(id);

function colourOf(label) {
  const index = page.classes.indexOf(label);
  return PALETTE[(index < 0 ? 0 : index) % PALETTE.length];
}

function percent(value) {
  return `${Math.round(value * 100)} %`;
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

// --- Session: one speaker over several recordings, only while the page is open -----------

function newSessionId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function endSession() {
  if (!page.sessionId) return;
  const url = `/session/${encodeURIComponent(page.sessionId)}`;
  page.sessionId = null;
  fetch(url, { method: "DELETE", keepalive: true }).catch(() => {});
}

function onSessionToggle() {
  if ($("one-speaker").checked) {
    page.sessionId = newSessionId();
  } else {
    endSession();
  }
}

// --- Recording: Web Audio PCM, encoded as 16-bit WAV here (no codec needed server-side) ---

async function startRecording() {
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    setStatus("This browser cannot record here (the microphone needs https or localhost). " +
      "You can still choose a file.", true);
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
        autoGainControl: false },
    });
  } catch (error) {
    setStatus(`No microphone: ${error.message || error.name}. You can still choose a file.`, true);
    return;
  }
  const context = new AudioContext();
  await context.audioWorklet.addModule("/static/recorder-worklet.js");
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "pcm-recorder", { numberOfOutputs: 0 });
  const chunks = [];
  node.port.onmessage = (event) => chunks.push(event.data);
  source.connect(node);
  const started = performance.now();
  const timer = setInterval(() => {
    const seconds = (performance.now() - started) / 1000;
    $("timer").textContent = `${seconds.toFixed(1)} s`;
    if (seconds >= MAX_RECORD_SECONDS) stopRecording();
  }, 100);
  page.recording = { context, stream, node, source, chunks, timer };
  const button = $("record");
  button.classList.add("recording");
  $("record-label").textContent = "Stop";
  button.setAttribute("aria-pressed", "true");
  setStatus("Recording… press Stop when you are done.");
}

async function stopRecording() {
  const recording = page.recording;
  if (!recording) return;
  page.recording = null;
  clearInterval(recording.timer);
  // Ask the worklet for its last partial block before closing.
  const flushed = new Promise((resolve) => {
    recording.node.port.onmessage = (event) => {
      recording.chunks.push(event.data);
      resolve();
    };
    setTimeout(resolve, 300);
  });
  recording.node.port.postMessage("flush");
  await flushed;
  recording.source.disconnect();
  recording.stream.getTracks().forEach((track) => track.stop());
  const rate = recording.context.sampleRate;
  await recording.context.close();
  const button = $("record");
  button.classList.remove("recording");
  $("record-label").textContent = "Record";
  button.setAttribute("aria-pressed", "false");
  const wav = encodeWav(recording.chunks, rate);
  const seconds = (wav.size - 44) / 2 / rate;
  await predict(wav, `your recording (${seconds.toFixed(1)} s)`, false);
}

function encodeWav(chunks, rate) {
  const count = chunks.reduce((total, chunk) => total + chunk.length, 0);
  const buffer = new ArrayBuffer(44 + count * 2);
  const view = new DataView(buffer);
  const text = (offset, value) => {
    for (let i = 0; i < value.length; i++) view.setUint8(offset + i, value.charCodeAt(i));
  };
  text(0, "RIFF");
  view.setUint32(4, 36 + count * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true); // bytes per second
  view.setUint16(32, 2, true); // bytes per frame
  view.setUint16(34, 16, true); // bits per sample
  text(36, "data");
  view.setUint32(40, count * 2, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++, offset += 2) {
      const sample = Math.max(-1, Math.min(1, chunk[i]));
      view.setInt16(offset, sample < 0 ? sample * 0x8000 : sample * 0x7fff, true);
    }
  }
  return new Blob([buffer], { type: "audio/wav" });
}

// --- Asking the service and showing the answer ------------------------------------------

async function predict(blob, description, asForm, fileName = "") {
  setStatus(`Listening to ${description}…`);
  $("record").disabled = true;
  const headers = {};
  if (page.sessionId) headers[SESSION_HEADER] = page.sessionId;
  let body = blob;
  if (asForm) {
    body = new FormData();
    body.append("file", blob, fileName);
  } else {
    headers["Content-Type"] = blob.type || "application/octet-stream";
  }
  try {
    const response = await fetch("/predict?per_window=true", { method: "POST", headers, body });
    const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (!response.ok) {
      setStatus(`Could not judge ${description}: ${answer.error}`, true);
      return;
    }
    show(answer, description);
  } catch (error) {
    setStatus(`The service did not answer: ${error.message}`, true);
  } finally {
    $("record").disabled = false;
  }
}

function show(answer, description) {
  $("result").hidden = false;
  $("label").textContent = answer.label;
  $("label").style.color = colourOf(answer.label);
  $("confidence").textContent = percent(answer.confidence);
  $("source").textContent = description;
  const entries = Object.entries(answer.probabilities).sort((a, b) => b[1] - a[1]);
  const bars = $("bars");
  bars.replaceChildren(...entries.map(([name, value], rank) => {
    const item = document.createElement("li");
    if (rank === 0) item.classList.add("top");
    item.innerHTML = '<span class="name"></span><span class="track" aria-hidden="true">' +
      '<span class="fill"></span></span><span class="value"></span>';
    item.querySelector(".name").textContent = name;
    item.querySelector(".value").textContent = percent(value);
    const fill = item.querySelector(".fill");
    fill.style.width = `${(value * 100).toFixed(1)}%`;
    fill.style.background = colourOf(name);
    return item;
  }));
  showTimeline(answer.windows || []);
  const windows = answer.windows ? answer.windows.length : 0;
  setStatus(`${answer.label}, ${percent(answer.confidence)} sure` +
    (windows > 1 ? `, over ${windows} windows.` : "."));
}

function showTimeline(windows) {
  const block = $("timeline-block");
  block.hidden = windows.length < 2;
  if (block.hidden) return;
  const step = windows[1].start - windows[0].start;
  const end = windows[windows.length - 1].start + 2 * step; // a window spans two hops
  $("timeline").replaceChildren(...windows.map((window) => {
    const item = document.createElement("li");
    const text = `${window.start.toFixed(1)} to ${(window.start + 2 * step).toFixed(1)} s: ` +
      `${window.label}, ${percent(window.confidence)}`;
    item.tabIndex = 0;
    item.title = text;
    item.setAttribute("aria-label", text);
    item.style.background = colourOf(window.label);
    item.style.opacity = (0.45 + 0.55 * window.confidence).toFixed(2);
    return item;
  }));
  const axis = $("axis");
  axis.replaceChildren(...[0, end / 2, end].map((second) => {
    const tick = document.createElement("span");
    tick.textContent = `${second.toFixed(1)} s`;
    return tick;
  }));
  const seen = [...new Set(windows.map((window) => window.label))];
  $("legend").replaceChildren(...seen.map((label) => {
    const item = document.createElement("li");
    item.innerHTML = '<span class="swatch" aria-hidden="true"></span>';
    item.querySelector(".swatch").style.background = colourOf(label);
    item.append(label);
    return item;
  }));
}

// --- Files: chosen or dropped -------------------------------------------------------------

function takeFile(file) {
  if (file) predict(file, file.name, true, file.name);
}

function setUpDrop() {
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    takeFile(event.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", (event) => {
    takeFile(event.target.files[0]);
    event.target.value = ""; // choosing the same file again judges it again
  });
}

async function describeModel() {
  try {
    const [model, health] = await Promise.all([
      fetch("/model").then((response) => response.json()),
      fetch("/health").then((response) => response.json()),
    ]);
    page.classes = model.answers || model.classes || [];
    page.sessionsOffered = Boolean(health.sessions);
    $("model-summary").textContent = `It knows ${page.classes.length} emotions: ` +
      `${page.classes.join(", ")}.`;
  } catch (error) {
    setStatus(`The service did not answer: ${error.message}`, true);
  }
  const box = $("one-speaker");
  if (!page.sessionsOffered) {
    box.disabled = true;
    const note = $("session-note");
    note.hidden = false;
    note.textContent = "This service does not keep sessions (it runs several processes).";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("record").setAttribute("aria-pressed", "false");
  $("record").addEventListener("click", () => {
    if (page.recording) stopRecording();
    else startRecording();
  });
  $("one-speaker").addEventListener("change", onSessionToggle);
  setUpDrop();
  describeModel();
  window.addEventListener("pagehide", endSession);
});
