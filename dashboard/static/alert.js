// Alert until handled: while any alarm waits to be taken (the store's count
// of `received`, never the rows on screen) the desk repeats a tone chosen
// by the most urgent waiting alarm's priority (fire its own), shows the
// count in the tab title, and flashes those rows (desk.css).  A task a grid
// worker did not accept in time (worker.py) rings too, and is counted in
// the title, until it is accepted or re-dispatched.  A live alarm
// raises a desktop notification while the tab is hidden.
//
// Chromium keeps audio suspended until the page was used: then a bar asks
// for one click, which starts it.  The operator may mute the desk; that is
// stored and audited by the centre (PUT /api/v1/desk/sound) and shown in
// the header, and it follows them to every desk they open.
"use strict";

(function () {
  const desk = window.HGDesk;
  const boot = desk.boot;
  const L = boot.labels;
  const R = window.HGReadable;
  const el = function (id) { return document.getElementById(id); };
  const bar = el("sound-bar");
  const state = el("sound-state");
  const muteButton = el("mute");
  const allow = el("notify-allow");
  const baseTitle = document.title;
  // priority -> [[frequency Hz, seconds], ...] played every `every` ms
  const TONES = {
    1: { every: 1000, notes: [[988, 0.22], [740, 0.22], [988, 0.22]] },  // fire
    2: { every: 2000, notes: [[880, 0.18], [0, 0.1], [880, 0.18]] },
    other: { every: 4000, notes: [[660, 0.3]] },
  };
  let muted = boot.muted;
  let ctx = null;
  let pressing = false;  // a pointer press that started the sound is not up yet
  let timer = null;
  let tonePriority = null;
  const played = { tones: 0, last: null };  // for tests: oscillators started

  function audioContext() {
    if (ctx !== null) return ctx;
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    ctx = new Ctx();
    ctx.onstatechange = show;
    return ctx;
  }

  function play(priority) {
    const c = audioContext();
    if (c === null || c.state !== "running") return;
    const tone = TONES[priority] || TONES.other;
    let at = c.currentTime;
    tone.notes.forEach(function (n) {
      if (n[0] > 0) {
        const osc = c.createOscillator();
        const gain = c.createGain();
        osc.type = priority === 1 ? "square" : "sine";
        osc.frequency.value = n[0];
        gain.gain.value = 0.15;
        osc.connect(gain).connect(c.destination);
        osc.start(at);
        osc.stop(at + n[1]);
        played.tones++;
      }
      at += n[1];
    });
    played.last = priority;
  }

  // the most urgent alarm nobody has taken: the first row, when received;
  // else the first task a grid worker did not accept in time (worker.py)
  function waitingPriority() {
    if (desk.counts().received) {
      const first = desk.rows().querySelector('tr[data-state="received"]');
      return first ? Number(first.dataset.priority) : 4;
    }
    if (!desk.counts().worker_overdue) return null;
    const late = desk.rows().querySelector('tr[data-worker-step="overdue"]');
    return late ? Number(late.dataset.priority) : 4;
  }

  function ring() {
    const p = waitingPriority();
    const want = muted ? null : p;
    if (want !== tonePriority) {
      clearInterval(timer);
      timer = null;
      tonePriority = want;
      if (want !== null) {
        play(want);
        timer = setInterval(function () { play(want); }, (TONES[want] || TONES.other).every);
      }
    }
    const n = desk.counts().received;
    const late = desk.counts().worker_overdue || 0;
    const parts = [];
    if (n) parts.push(R.fill(L.desk.title_count, { n: n }));
    if (late) parts.push(R.fill(L.desk.title_overdue, { n: late }));
    document.title = parts.length ? parts.join(" · ") + " · Homeguard" : baseTitle;
  }

  // the header's sound state, and the bar while the browser blocks audio
  function show() {
    const c = audioContext();
    const blocked = !muted && c !== null && c.state !== "running";
    if (!pressing) bar.hidden = !blocked;  // the bar stays while a press is down
    state.dataset.state = muted || blocked ? "off" : "on";
    state.textContent = muted || blocked ? L.desk.sound_off : L.desk.sound_on;
    muteButton.textContent = muted ? L.desk.unmute : L.desk.mute;
    if (c !== null && c.state === "running") { tonePriority = null; ring(); }
  }

  async function resume() {
    const c = audioContext();
    if (c !== null && c.state !== "running") {
      try { await c.resume(); } catch (err) { console.warn("audio not started:", err); }
    }
  }

  async function start() {
    await resume();
    show();
  }

  async function setMuted(value) {
    const r = await fetch(boot.api + "/desk/sound", {
      method: "PUT", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf },
      body: JSON.stringify({ muted: value }),
    });
    if (!r.ok) { console.warn("sound setting not saved: HTTP " + r.status); return; }
    muted = (await r.json()).muted;
    if (!muted) await start();
    show();
    ring();
  }

  async function notify(a) {
    if (!document.hidden || !("Notification" in window)) return;
    if (Notification.permission !== "granted") return;
    const s = await desk.whenSite(a.device);
    const where = s && s.household ? s.household + " " + (s.address || "") : a.device;
    try {
      const n = new Notification(R.fill(L.desk.notify_title, { type: L.types[a.type] || a.type }), {
        body: R.fill(L.desk.notify_body, { site: where }), tag: "alarm-" + a.id,
        requireInteraction: a.priority <= 2,
      });
      n.onclick = function () { window.focus(); desk.open(desk.rows().querySelector(
        'tr[data-alarm-id="' + a.id + '"]')); };
    } catch (err) {
      console.warn("no desktop notification:", err);
    }
  }

  function offerNotifications() {
    allow.hidden = !("Notification" in window) || Notification.permission !== "default";
  }

  bar.addEventListener("click", start);
  muteButton.addEventListener("click", function () { setMuted(!muted); });
  allow.addEventListener("click", async function () {
    await Notification.requestPermission();
    offerNotifications();
  });
  // any use of the page lets the browser start the sound.  After a pointer
  // press the bar goes only once the pointer is up: gone at once, it moved the
  // rows up under the pointer, the press ended on another row and the click
  // reached none (the first click on the desk was lost)
  function suspended() { return ctx !== null && ctx.state !== "running" && !muted; }
  document.addEventListener("keydown", function () { if (suspended()) start(); }, true);
  document.addEventListener("pointerdown", function () {
    if (!suspended()) return;
    pressing = true;
    const resumed = resume();
    const done = function () {
      document.removeEventListener("pointerup", done, true);
      document.removeEventListener("pointercancel", done, true);
      pressing = false;
      // after this input's mouseup and click (one task): then the page may move
      resumed.then(function () { setTimeout(show, 0); });
    };
    document.addEventListener("pointerup", done, true);
    document.addEventListener("pointercancel", done, true);
  }, true);

  desk.listen(function (arrived) {
    if (arrived) notify(arrived);
    ring();
  });
  window.HGAlert = {
    played: played,
    muted: function () { return muted; },
    audio: function () { return ctx === null ? "none" : ctx.state; },
    tone: function () { return tonePriority; },
    setMuted: setMuted,
  };
  audioContext();
  offerNotifications();
  show();
  ring();
})();
