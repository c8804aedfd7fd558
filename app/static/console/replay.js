// meetrec console: the web replay player. rrweb's Replayer (vendor/rrweb) rebuilds the recorded page in a
// sandboxed iframe; this is its controller: play/pause, speed, skip inactivity, and a timeline to seek
// on, with the clicks and console errors marked where they happened. The events and the markers come
// from the box's data-events-url (app.console.replay.events_body). window.meetrecReplay exposes the
// replayer and the controller's seek for tests and the curious.
(function () {
  "use strict";

  var STEP_MS = 5000;
  var MAX_STAGE_HEIGHT = 640;
  var LABELS = { click: "Click", error: "Console error" };

  function clock(ms) {
    return window.meetrecConsole ? window.meetrecConsole.clock(ms / 1000) : String(Math.floor(ms / 1000));
  }

  function part(box, role) {
    return box.querySelector("[data-role=" + role + "]");
  }

  function say(box, text, failed) {
    var status = part(box, "replay-status");
    status.textContent = text;
    status.classList.toggle("flash-error", !!failed);
  }

  function load(box) {
    fetch(box.dataset.eventsUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        // Signed out (the route redirects to the sign-in page): reloading signs in and comes back.
        if (response.redirected || response.status === 401) { window.location.reload(); return null; }
        if (!response.ok) throw new Error("the server answered " + response.status);
        return response.json();
      })
      .then(function (data) { if (data) start(box, data); })
      .catch(function (error) { say(box, "The replay could not be loaded: " + error.message + ".", true); });
  }

  function start(box, data) {
    if (data.events.length < 2) {
      say(box, "This replay has too few events to play yet.", true);
      return;
    }
    var stage = part(box, "stage");
    var replayer = new window.rrweb.Replayer(data.events, {
      root: stage,
      skipInactive: part(box, "skip").checked,
      speed: 1,
      showWarning: false,
      mouseTail: false,
    });
    var meta = replayer.getMetaData();
    var player = controller(box, replayer, meta.totalTime);
    markers(box, data.markers, meta.startTime, meta.totalTime);
    fit(stage, replayer);
    replayer.on("resize", function () { fit(stage, replayer); });
    window.addEventListener("resize", function () { fit(stage, replayer); });
    say(box, data.truncated
      ? "Showing the first " + data.loaded + " of " + data.total + " events: the replay is too large to load at once."
      : "Ready: " + data.loaded + " events.", data.truncated);
    player.seek(0);
    window.meetrecReplay = { replayer: replayer, seek: player.seek, total: meta.totalTime };
  }

  // Scale the replayed viewport (the recorded window's size) to the stage's width.
  function fit(stage, replayer) {
    var wrapper = replayer.wrapper, iframe = replayer.iframe;
    var width = iframe.offsetWidth || Number(iframe.width), height = iframe.offsetHeight || Number(iframe.height);
    if (!width || !height) return;
    var scale = Math.min(1, stage.clientWidth / width, MAX_STAGE_HEIGHT / height);
    wrapper.style.transform = "scale(" + scale + ")";
    wrapper.style.transformOrigin = "0 0";
    stage.style.height = Math.ceil(height * scale) + "px";
  }

  function markers(box, found, startTime, total) {
    var layer = part(box, "markers");
    found.forEach(function (m) {
      var offset = Math.min(Math.max(0, m[0] - startTime), total);
      var mark = document.createElement("span");
      mark.className = "marker marker-" + m[1];
      mark.dataset.offset = String(offset);
      mark.style.left = (total ? (offset / total) * 100 : 0) + "%";
      mark.title = (LABELS[m[1]] || m[1]) + " at " + clock(offset);
      layer.appendChild(mark);
    });
  }

  function controller(box, replayer, total) {
    var play = part(box, "play"), speed = part(box, "speed"), skip = part(box, "skip");
    var timeline = part(box, "timeline"), progress = part(box, "progress"), time = part(box, "time");
    var playing = false, frame = 0;

    function position() {
      return Math.min(Math.max(0, replayer.getCurrentTime()), total);
    }

    function show(at) {
      progress.style.width = (total ? (at / total) * 100 : 0) + "%";
      time.textContent = clock(at);
      timeline.setAttribute("aria-valuenow", String(Math.round(at)));
      timeline.setAttribute("aria-valuetext", clock(at) + " of " + clock(total));
    }

    function tick() {
      show(position());
      frame = playing ? window.requestAnimationFrame(tick) : 0;
    }

    function setPlaying(on) {
      playing = on;
      play.textContent = on ? "Pause" : "Play";
      box.dataset.playing = on ? "true" : "false";
      if (on && !frame) frame = window.requestAnimationFrame(tick);
      if (!on) show(position());
    }

    function seek(ms) {
      var at = Math.min(Math.max(0, ms), total);
      if (playing) replayer.play(at); else replayer.pause(at);
      show(at);
      return at;
    }

    function seekToPointer(event) {
      var rect = timeline.getBoundingClientRect();
      seek(((event.clientX - rect.left) / rect.width) * total);
    }

    play.addEventListener("click", function () {
      if (playing) {
        replayer.pause();
        setPlaying(false);
        return;
      }
      var at = position();
      replayer.play(at >= total ? 0 : at);
      setPlaying(true);
    });
    speed.addEventListener("change", function () {
      replayer.setConfig({ speed: Number(speed.value) });
    });
    skip.addEventListener("change", function () {
      replayer.setConfig({ skipInactive: skip.checked });
    });
    timeline.addEventListener("pointerdown", function (event) {
      timeline.setPointerCapture(event.pointerId);
      seekToPointer(event);
    });
    timeline.addEventListener("pointermove", function (event) {
      if (timeline.hasPointerCapture(event.pointerId)) seekToPointer(event);
    });
    timeline.addEventListener("keydown", function (event) {
      var moves = { ArrowLeft: -STEP_MS, ArrowDown: -STEP_MS, ArrowRight: STEP_MS, ArrowUp: STEP_MS };
      if (event.key in moves) seek(position() + moves[event.key]);
      else if (event.key === "Home") seek(0);
      else if (event.key === "End") seek(total);
      else return;
      event.preventDefault();
    });
    replayer.on("finish", function () { setPlaying(false); });

    timeline.setAttribute("aria-valuemax", String(Math.round(total)));
    timeline.setAttribute("aria-disabled", "false");
    part(box, "total").textContent = clock(total);
    [play, speed, skip].forEach(function (control) { control.disabled = false; });
    return { seek: seek };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector(".replay[data-events-url]");
    if (!box) return;
    if (window.rrweb && window.rrweb.Replayer) load(box);
    else say(box, "rrweb's player did not load, so the replay cannot be shown.", true);
  });
})();
