// CropShield web chat: sends a text or a photo, renders the bot's replies, and polls for replies
// that arrive later (from support staff).
"use strict";
(function () {
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const text = document.getElementById("text");
  const photo = document.getElementById("photo");
  const send = document.getElementById("send");
  const working = document.getElementById("working");
  let last = 0;
  const seen = new Set();

  function render(entry, previewURL) {
    if (seen.has(entry.seq)) return;
    seen.add(entry.seq);
    last = Math.max(last, entry.seq);
    const div = document.createElement("div");
    div.className = "msg " + entry.from + " " + (entry.kind || "");
    div.dataset.seq = entry.seq;
    const src = entry.image_url || previewURL;
    if (src) {
      const img = document.createElement("img");
      img.src = src;
      img.alt = entry.from === "bot" ? "Heat-map of your photo: red shows where CropShield looked" : "Your photo";
      div.appendChild(img);
    }
    if (entry.text) div.appendChild(document.createTextNode(entry.text));
    else if (entry.from === "you" && entry.kind === "photo" && !src) div.appendChild(document.createTextNode("[photo]"));
    if (entry.choices && entry.choices.length) {
      // The bot's buttons (which crop?): a tap sends the choice; the buttons then stay disabled.
      const row = document.createElement("div");
      row.className = "choices";
      entry.choices.forEach((c) => {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = c.label;
        b.dataset.choice = c.data;
        b.addEventListener("click", () => {
          row.querySelectorAll("button").forEach((x) => { x.disabled = true; });
          b.classList.add("chosen");
          const data = new FormData();
          data.append("choice", c.data);
          data.append("label", c.label);
          post(data, null);
        });
        row.appendChild(b);
      });
      div.appendChild(row);
    }
    const t = document.createElement("span");
    t.className = "time";
    t.textContent = new Date(entry.time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    div.appendChild(t);
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
  }

  async function poll() {
    try {
      const r = await fetch("/api/messages?after=" + last, { credentials: "same-origin" });
      if (r.ok) (await r.json()).entries?.forEach((e) => render(e));
    } catch (e) { /* offline: try again later */ }
  }

  async function submit(ev) {
    ev.preventDefault();
    const file = photo.files[0];
    if (!text.value.trim() && !file) return;
    const data = new FormData();
    data.append("text", text.value);
    if (file) data.append("photo", file);
    await post(data, file);
  }

  async function post(data, file) {
    const preview = file ? URL.createObjectURL(file) : null;
    send.disabled = true;
    working.hidden = !file;
    try {
      const r = await fetch("/api/send?after=" + last, { method: "POST", body: data, credentials: "same-origin" });
      if (!r.ok) {
        render({ seq: -Date.now(), from: "bot", kind: "error", text: "Could not send: " + (await r.text()), time: new Date() });
      } else {
        const entries = (await r.json()).entries || [];
        entries.forEach((e) => render(e, e.from === "you" && e.kind === "photo" ? preview : null));
      }
    } catch (e) {
      render({ seq: -Date.now(), from: "bot", kind: "error", text: "Could not reach CropShield. Check the connection and try again.", time: new Date() });
    } finally {
      send.disabled = false;
      working.hidden = true;
      text.value = "";
      photo.value = "";
      text.focus();
    }
  }

  form.addEventListener("submit", submit);
  photo.addEventListener("change", () => { if (photo.files.length) form.requestSubmit(); });
  poll();
  setInterval(poll, 3000);
})();
