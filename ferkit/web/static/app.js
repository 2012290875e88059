// The page of serve.py: Camera (frames over a WebSocket, one in flight at a time, so latency
// stays bounded whatever the server's speed), Photo and Video (uploads as the request body).
// window.ferkit holds what the page received and drew, for the browser test (tests/test_serve_browser.py).
"use strict";

const CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"];
const COLORS = ["rgb(230,40,40)", "rgb(120,170,20)", "rgb(150,60,200)", "rgb(255,200,0)",
                "rgb(40,110,230)", "rgb(255,120,0)", "rgb(200,200,200)"];  // media.COLORS
const SEND_WIDTH = 640;  // camera frames wider than this are shrunk before they are sent
const $ = (id) => document.getElementById(id);
const ferkit = window.ferkit = {info: null, camera: {replies: 0, errors: [], received: null, drawn: []},
                                photo: null, video: null};

function say(id, text, error = false) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("error", error);
}

function size(n) {  // as the server words it (ferkit/web/app.py _size)
  return n >= 2 ** 20 ? (n / 2 ** 20).toFixed(1).replace(/\.0$/, "") + " MB" : n.toLocaleString("en-US") + " bytes";
}

// ------------------------------------------------------------------ tabs and limits

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === tab);
    for (const m of document.querySelectorAll(".mode")) m.hidden = m.id !== "mode-" + tab.dataset.mode;
    if (tab.dataset.mode !== "camera") stopCamera();
  });
}

fetch("/api/info").then((r) => r.json()).then((info) => {
  ferkit.info = info;
  $("model").textContent = info.model;
  const up = `at most ${size(info.limits.upload_bytes)}`;
  $("photo-limit").textContent = `${up}, ${(info.limits.picture_pixels / 1e6).toFixed(0)} megapixels`;
  $("video-limit").textContent = `${up}; the first ${info.limits.video_frames} frames are read`;
}).catch(() => say("camera-message", "the server does not answer; is serve.py running?", true));

// ------------------------------------------------------------------ camera

const cam = {stream: null, ws: null, busy: false, sentAt: 0, replyTimes: [], latency: 0, running: false};
const grab = document.createElement("canvas");

async function startCamera() {
  say("camera-message", "");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say("camera-message", "this browser gives no camera to the page (it needs http://127.0.0.1 or https)", true);
    return;
  }
  try {
    cam.stream = await navigator.mediaDevices.getUserMedia({video: {width: {ideal: 640}, height: {ideal: 480}}, audio: false});
  } catch (e) {
    say("camera-message", `no camera: ${e.name}${e.message ? ": " + e.message : ""}`, true);
    return;
  }
  const video = $("camera-video");
  video.srcObject = cam.stream;
  await video.play();
  // the overlay is stretched over the video: give the stage the camera's shape (16:9 webcams too)
  if (video.videoWidth) video.parentElement.style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
  cam.running = true;
  $("camera-start").disabled = true;
  $("camera-stop").disabled = false;
  connect();
}

function connect() {
  const ws = cam.ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/camera`);
  ws.binaryType = "arraybuffer";
  cam.busy = false;
  ws.onopen = () => sendFrame();
  ws.onmessage = (event) => onReply(JSON.parse(event.data));
  ws.onclose = (event) => {
    if (cam.ws !== ws) return;
    cam.busy = false;
    if (cam.running) {
      const why = event.code === 1009 ? "a frame was over the server's size limit"
        : event.code === 1013 ? "the server is busy" : `connection closed (code ${event.code})`;
      say("camera-message", `${why}; reconnecting in 2 s`, true);
      setTimeout(() => { if (cam.running && cam.ws === ws) connect(); }, 2000);
    }
  };
}

function sendFrame() {
  const video = $("camera-video");
  if (!cam.running || cam.busy || !cam.ws || cam.ws.readyState !== WebSocket.OPEN || !video.videoWidth) {
    if (cam.running && !video.videoWidth) setTimeout(sendFrame, 50);
    return;
  }
  cam.busy = true;  // one frame in flight: the next one is taken when this one's reply arrives
  const scale = Math.min(1, SEND_WIDTH / video.videoWidth);  // HD webcams: sent at 640 wide
  grab.width = Math.round(video.videoWidth * scale);
  grab.height = Math.round(video.videoHeight * scale);
  grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
  grab.toBlob(async (blob) => {
    if (!blob || !cam.ws || cam.ws.readyState !== WebSocket.OPEN) { cam.busy = false; return; }
    const buf = await blob.arrayBuffer();
    cam.sentAt = performance.now();
    cam.ws.send(buf);
  }, "image/jpeg", 0.85);
}

function onReply(reply) {
  const now = performance.now();
  cam.busy = false;
  ferkit.camera.replies += 1;
  if (reply.error) {
    ferkit.camera.errors.push(reply.error);
    say("camera-message", reply.error, true);
    if (reply.error.startsWith("busy")) { cam.running = false; return; }
  } else {
    say("camera-message", "");
    ferkit.camera.received = reply;
    drawFaces(reply);
    cam.latency = now - cam.sentAt;
    cam.replyTimes.push(now);
    while (cam.replyTimes.length && now - cam.replyTimes[0] > 2000) cam.replyTimes.shift();
    const fps = cam.replyTimes.length > 1
      ? (cam.replyTimes.length - 1) / ((now - cam.replyTimes[0]) / 1000) : 0;
    ferkit.camera.fps = fps;
    ferkit.camera.latency = cam.latency;
    $("camera-stats").textContent = `${fps.toFixed(1)} frames/s · latency ${cam.latency.toFixed(0)} ms ` +
      `(server ${reply.ms.server.toFixed(0)} ms: decode ${reply.ms.decode.toFixed(0)}, faces ${reply.ms.faces.toFixed(0)})`;
  }
  if (cam.running) requestAnimationFrame(sendFrame);
}

function drawFaces(reply) {
  const canvas = $("camera-overlay");
  canvas.width = reply.width;
  canvas.height = reply.height;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const drawn = [];
  const thick = Math.max(2, Math.round(Math.min(reply.width, reply.height) / 200));
  ctx.font = `bold ${Math.max(14, Math.round(reply.height / 28))}px system-ui, sans-serif`;
  ctx.textBaseline = "bottom";
  for (const face of reply.faces) {
    const [x, y, w, h] = face.box;
    const color = COLORS[face.label];
    ctx.lineWidth = thick;
    ctx.strokeStyle = color;
    ctx.strokeRect(x, y, w, h);
    const label = `${face.emotion} ${(100 * face.probs[face.emotion]).toFixed(0)}%`;
    const tw = ctx.measureText(label).width + 2 * thick;
    const th = parseInt(ctx.font.match(/(\d+)px/)[1], 10) + 2 * thick;
    const top = y - th >= 0 ? y - th : y + h;
    ctx.fillStyle = color;
    ctx.fillRect(x, top, tw, th);
    ctx.fillStyle = face.label === 3 || face.label === 6 ? "#000" : "#fff";
    ctx.fillText(label, x + thick, top + th - thick);
    // the 7 probabilities as small bars inside the box's lower edge
    const barW = w / CLASSES.length;
    CLASSES.forEach((name, k) => {
      const p = face.probs[name];
      ctx.fillStyle = COLORS[k];
      ctx.fillRect(x + k * barW + 1, y + h - p * h * 0.3, Math.max(1, barW - 2), p * h * 0.3);
    });
    drawn.push({box: [x, y, w, h], emotion: face.emotion, label: face.label, text: label});
  }
  ferkit.camera.drawn = drawn;
  showFaceList($("camera-faces"), reply.faces);
}

function showFaceList(el, faces) {
  el.replaceChildren();
  faces.forEach((face, i) => {
    const div = document.createElement("div");
    div.className = "face";
    const h = document.createElement("h3");
    h.textContent = `Face ${i + 1}: ${face.emotion}`;
    h.style.borderLeft = `6px solid ${COLORS[face.label]}`;
    h.style.paddingLeft = "0.4rem";
    div.appendChild(h);
    for (const name of CLASSES) {
      const row = document.createElement("div");
      row.className = "bar";
      const p = face.probs[name];
      row.innerHTML = `<span></span><span><span class="fill" style="width:${(100 * p).toFixed(1)}%"></span></span><span class="num"></span>`;
      row.children[0].textContent = name;
      row.children[2].textContent = (100 * p).toFixed(1) + "%";
      div.appendChild(row);
    }
    el.appendChild(div);
  });
}

function stopCamera() {
  cam.running = false;
  if (cam.ws) { const ws = cam.ws; cam.ws = null; ws.close(); }
  if (cam.stream) { for (const t of cam.stream.getTracks()) t.stop(); cam.stream = null; }
  $("camera-start").disabled = false;
  $("camera-stop").disabled = true;
}

$("camera-start").addEventListener("click", startCamera);
$("camera-stop").addEventListener("click", stopCamera);

// ------------------------------------------------------------------ uploads

async function upload(kind, file, extra = "") {
  const limit = ferkit.info ? ferkit.info.limits.upload_bytes : Infinity;
  if (file.size > limit) {  // refused here: a browser may not show the server's early answer
    throw new Error(`${file.name} is ${size(file.size)}; the limit is ${size(limit)}`);
  }
  let response;
  try {
    response = await fetch(`/api/${kind}?name=${encodeURIComponent(file.name)}${extra}`,
                           {method: "POST", body: file, headers: {"Content-Type": "application/octet-stream"}});
  } catch (e) {
    throw new Error(`the upload failed (${e.message}); is serve.py still running?`);
  }
  let body;
  try { body = await response.json(); } catch (e) { body = {error: `server answered ${response.status}`}; }
  if (!response.ok || body.error) throw new Error(body.error || `server answered ${response.status}`);
  return body;
}

function faceTable(table, rows, withFrame) {
  table.replaceChildren();
  const head = table.insertRow();
  for (const h of [withFrame ? "frame" : "#", "x", "y", "w", "h", "emotion", ...CLASSES]) {
    const th = document.createElement("th");
    th.textContent = h;
    head.appendChild(th);
  }
  rows.forEach((r, i) => {
    const tr = table.insertRow();
    for (const v of [withFrame ? r.frame : i + 1, ...r.box, r.emotion, ...CLASSES.map((c) => r.probs[c].toFixed(3))]) {
      tr.insertCell().textContent = v;
    }
  });
  table.hidden = rows.length === 0;
}

$("photo-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  $("photo-result").hidden = true;
  $("photo-table").hidden = true;
  ferkit.photo = null;
  say("photo-message", `reading ${file.name} ...`);
  try {
    const result = await upload("photo", file);
    ferkit.photo = result;
    $("photo-result").src = result.image;
    $("photo-result").hidden = false;
    faceTable($("photo-table"), result.faces, false);
    say("photo-message", `${result.faces.length} face${result.faces.length === 1 ? "" : "s"} in ${file.name} ` +
      `(${result.width}x${result.height})`);
  } catch (e) {
    ferkit.photo = {error: e.message};
    say("photo-message", e.message, true);
  }
});

function parseCsv(text) {
  const lines = text.trim().split("\n");
  const head = lines.shift().split(",");
  return lines.map((line) => {
    const cells = line.split(",");
    const value = (name) => cells[cells.length - head.length + head.indexOf(name)];  // the file name may hold commas
    return {frame: value("frame"), box: ["x", "y", "w", "h"].map(value), emotion: value("emotion"),
            probs: Object.fromEntries(CLASSES.map((c) => [c, parseFloat(value(c))]))};
  });
}

$("video-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const player = $("video-result");
  player.hidden = true;
  $("video-csv").hidden = true;
  $("video-table").hidden = true;
  ferkit.video = null;
  const every = Math.max(1, Math.min(100, parseInt($("video-every").value, 10) || 1));
  say("video-message", `reading ${file.name} (a few frames a second on a small CPU) ...`);
  try {
    const result = await upload("video", file, `&every=${every}`);
    const rows = parseCsv(await (await fetch(result.csv)).text());
    ferkit.video = {...result, rows: rows.length, playable: false};
    player.onloadeddata = () => { ferkit.video.playable = true; ferkit.video.videoWidth = player.videoWidth; };
    player.onerror = () => { ferkit.video.playable = false; say("video-message", "the browser cannot play the annotated video", true); };
    player.src = result.video;
    player.hidden = false;
    $("video-csv").href = result.csv;
    $("video-csv").hidden = false;
    faceTable($("video-table"), rows.slice(0, 200), true);
    say("video-message", `${result.faces} faces in ${result.sampled} of ${result.frames} frames of ${file.name}, ` +
      `${result.seconds} s` + (result.cut ? `; only the first ${result.frames} frames were read (the limit)` : ""));
  } catch (e) {
    ferkit.video = {error: e.message};
    say("video-message", e.message, true);
  }
});
