// CropShield web chat: sends a text or a photo, renders the bot's replies, and polls for replies
// that arrive later (from support staff). The page's texts are in the chat's language; after a
// command (/language) the page asks for them again. It may ask once for the visitor's name.
"use strict";
(function () {
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const text = document.getElementById("text");
  const photo = document.getElementById("photo");
  const send = document.getElementById("send");
  const working = document.getElementById("working");
  const chat = document.getElementById("chat");
  const nameAsk = document.getElementById("name-ask");
  const nameText = document.getElementById("name-text");
  const nameAsked = "cropshield-name-asked";
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
      img.alt = entry.from === "bot" ? chat.dataset.heatmapAlt : chat.dataset.photoAlt;
      div.appendChild(img);
    }
    if (entry.text) div.appendChild(document.createTextNode(entry.text));
    else if (entry.from === "you" && entry.kind === "photo" && !src) div.appendChild(document.createTextNode("[" + chat.dataset.photoAlt + "]"));
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
          data.append("client_id", clientID());
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
    if (entry.from === "bot" && entry.kind === "command") refreshTexts();
  }

  // refreshTexts shows the page's texts in the chat's language (it may have changed).
  async function refreshTexts() {
    try {
      const r = await fetch("/api/page", { credentials: "same-origin" });
      if (!r.ok) return;
      const p = await r.json();
      const t = p.text;
      document.documentElement.lang = p.lang;
      document.getElementById("tagline").textContent = t.Tagline;
      document.title = "CropShield · " + t.Tagline;
      text.placeholder = t.Placeholder;
      text.setAttribute("aria-label", t.Placeholder);
      send.textContent = t.Send;
      working.textContent = t.Working;
      document.getElementById("attach").title = t.Attach;
      document.getElementById("attach-label").textContent = t.Attach;
      document.getElementById("name-prompt").textContent = t.NamePrompt;
      document.getElementById("name-save").textContent = t.NameSave;
      document.getElementById("name-skip").textContent = t.NameSkip;
      chat.dataset.photoAlt = t.PhotoAlt;
      chat.dataset.heatmapAlt = t.HeatmapAlt;
      chat.dataset.offline = t.Offline;
    } catch (e) { /* offline: the texts stay as they are */ }
  }

  // The visitor's name is asked once, and only if they gave none: skipping is fine.
  function closeNameAsk() {
    nameAsk.hidden = true;
    try { localStorage.setItem(nameAsked, "1"); } catch (e) { /* private mode: ask again next time */ }
  }
  let asked = false;
  try { asked = localStorage.getItem(nameAsked) === "1"; } catch (e) { /* no storage */ }
  if ("askName" in chat.dataset && !asked) nameAsk.hidden = false;
  nameAsk.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!nameText.value.trim()) return;
    try {
      const r = await fetch("/api/name", { method: "POST", body: new URLSearchParams({ name: nameText.value }), credentials: "same-origin" });
      if (r.ok) closeNameAsk();
    } catch (e) { /* offline: the form stays */ }
  });
  document.getElementById("name-skip").addEventListener("click", closeNameAsk);

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
    data.append("client_id", clientID());
    data.append("text", text.value);
    if (file) data.append("photo", file);
    await post(data, file);
  }

  // clientID names one message: sent again after a failed request (the server may have got it),
  // it is the same message, answered once.
  function clientID() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // sendOnce posts a message, sending it again (same client_id) while the server cannot be
  // reached or is restarting: 1, 2, 4, 8 s apart.
  async function sendOnce(data) {
    for (let wait = 1000; ; wait *= 2) {
      try {
        const r = await fetch("/api/send?after=" + last, { method: "POST", body: data, credentials: "same-origin" });
        if (r.status < 500 || wait > 8000) return r;
      } catch (e) {
        if (wait > 8000) throw e;
      }
      await sleep(wait);
    }
  }

  async function post(data, file) {
    const preview = file ? URL.createObjectURL(file) : null;
    send.disabled = true;
    working.hidden = !file;
    try {
      const r = await sendOnce(data);
      if (!r.ok) {
        render({ seq: -Date.now(), from: "bot", kind: "error", text: "Could not send: " + (await r.text()), time: new Date() });
      } else {
        const entries = (await r.json()).entries || [];
        entries.forEach((e) => render(e, e.from === "you" && e.kind === "photo" ? preview : null));
      }
    } catch (e) {
      render({ seq: -Date.now(), from: "bot", kind: "error", text: chat.dataset.offline, time: new Date() });
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
