// meetrec console: the player's seek, the event timeline, and live states while recordings run.
// No framework and no build step; every feature is an enhancement of a page that works without it.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var IN_FLIGHT = { started: true, stopped: true };

  function player() {
    return document.getElementById("player");
  }

  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds || 0));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }

  function humanSize(bytes) {
    if (bytes === null || bytes === undefined) return "—";
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], v = bytes, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return i === 0 ? v + " B" : v.toFixed(1) + " " + units[i];
  }

  function announce(text) {
    var live = document.getElementById("live-status");
    if (live) live.textContent = text;
  }

  // Move the video to `seconds` (clamped to its length); true when there is a player to move.
  function seek(seconds) {
    var video = player();
    if (!video || !isFinite(seconds)) return false;
    var end = isFinite(video.duration) ? video.duration : Number(video.dataset.duration) || Infinity;
    video.currentTime = Math.min(Math.max(0, seconds), end);
    announce("Video at " + clock(video.currentTime));
    return true;
  }

  // Mark the last event at or before the video's position as the current one.
  function markCurrentEvent(position) {
    var items = document.querySelectorAll(".events li[data-offset]");
    var current = null;
    items.forEach(function (li) {
      if (Number(li.dataset.offset) <= position + 0.05) current = li;
      li.removeAttribute("aria-current");
    });
    if (current) current.setAttribute("aria-current", "true");
  }

  // The bar under the video: its marks (events, gaps) placed by `data-at`, the position shown, a click
  // seeks. Positions are set here rather than in style attributes, which the page's policy refuses.
  function setUpTimeline(video) {
    var bar = document.querySelector("[data-role=video-timeline]");
    if (!bar) return function () {};
    var length = Number(bar.dataset.duration) || 0;
    function share(seconds) { return length ? Math.min(100, Math.max(0, (seconds / length) * 100)) : 0; }
    bar.querySelectorAll("[data-at]").forEach(function (mark) {
      mark.style.left = share(Number(mark.dataset.at)) + "%";
    });
    bar.addEventListener("click", function (event) {
      var box = bar.getBoundingClientRect();
      if (box.width) seek(((event.clientX - box.left) / box.width) * length);
    });
    var progress = bar.querySelector("[data-role=video-progress]");
    return function (seconds) { if (progress) progress.style.width = share(seconds) + "%"; };
  }

  function setUpPlayer() {
    var video = player();
    if (!video) return;
    var position = document.getElementById("player-position");
    var showOnTimeline = setUpTimeline(video);
    video.addEventListener("timeupdate", function () {
      if (position) position.textContent = clock(video.currentTime);
      showOnTimeline(video.currentTime);
      markCurrentEvent(video.currentTime);
    });
    document.addEventListener("click", function (event) {
      var button = event.target.closest("[data-seek]");
      if (!button) return;
      event.preventDefault();
      seek(Number(button.dataset.seek));
    });
  }

  function fetchStates(url, ids) {
    return fetch(url + "?ids=" + encodeURIComponent(ids.join(",")), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (response.status === 401) { window.location.reload(); return {}; }
      return response.ok ? response.json() : {};
    });
  }

  // Recordings tables: rows of running recordings update their state, duration and size in place.
  function liveTable(table) {
    var url = table.dataset.statesUrl;
    function running() {
      return Array.prototype.filter.call(table.querySelectorAll("tr[data-recording-id]"), function (row) {
        return IN_FLIGHT[row.dataset.state];
      });
    }
    function tick() {
      var rows = running();
      if (!rows.length) return;
      var ids = rows.map(function (row) { return row.dataset.recordingId; });
      fetchStates(url, ids).then(function (states) {
        rows.forEach(function (row) {
          var now = states[row.dataset.recordingId];
          if (!now || now.state === row.dataset.state) return;
          row.dataset.state = now.state;
          var badge = row.querySelector("[data-role=state]");
          if (badge) { badge.textContent = now.state; badge.className = "state state-" + now.state; }
          var duration = row.querySelector("[data-role=duration]");
          if (duration && now.duration !== null) duration.textContent = clock(now.duration);
          var size = row.querySelector("[data-role=size]");
          if (size) size.textContent = humanSize(now.size);
          if (now.state === "deleted") row.classList.add("gone");
          announce("Recording " + row.dataset.recordingId + " is now " + now.state);
        });
      }).catch(function () {}).then(function () { window.setTimeout(tick, POLL_MS); });
    }
    window.setTimeout(tick, POLL_MS);
  }

  // The detail page of a running recording reloads once its state changes (the player appears at finish)
  // or its capture changes hands or reconnects (the page then says what happened).
  function liveDetail(box) {
    if (!IN_FLIGHT[box.dataset.state]) return;
    function changed(now) {
      return now.state !== box.dataset.state ||
        String(now.capture_attempts) !== box.dataset.captureAttempts ||
        String(now.reconnects) !== box.dataset.reconnects;
    }
    function tick() {
      fetchStates(box.dataset.statesUrl, [box.dataset.recordingId]).then(function (states) {
        var now = states[box.dataset.recordingId];
        if (now && changed(now)) { window.location.reload(); return; }
        window.setTimeout(tick, POLL_MS);
      }).catch(function () { window.setTimeout(tick, POLL_MS); });
    }
    window.setTimeout(tick, POLL_MS);
  }

  // A `data-copy="<id>"` button copies the text of the element with that id (a snippet, the token).
  function copyButton(button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copy);
      if (!source || !navigator.clipboard) return;
      navigator.clipboard.writeText(source.textContent).then(function () {
        button.textContent = "Copied";
        announce("Copied to the clipboard");
        window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
      }, function () { announce("The browser refused the clipboard: select the text and copy it"); });
    });
  }

  // On a phone the recordings filters start folded unless one is in use: the list comes first.
  function foldFilters() {
    var box = document.querySelector("details[data-role=filters]");
    if (box && !box.hasAttribute("data-active") && window.matchMedia("(max-width: 48rem)").matches) {
      box.open = false;
    }
  }

  window.meetrecConsole = { seek: seek, clock: clock };

  document.addEventListener("DOMContentLoaded", function () {
    setUpPlayer();
    foldFilters();
    document.querySelectorAll("button[data-copy]").forEach(copyButton);
    document.querySelectorAll("table[data-states-url]").forEach(liveTable);
    var box = document.querySelector(".recording[data-states-url]");
    if (box) liveDetail(box);
  });
})();
