/*
 * meetrec's first-party recorder: rrweb's `record` streamed to meetrec's rrweb cloud dialect.
 * Served after the vendored rrweb bundle as GET /rrweb/record.js; plain ES2017, no build step.
 *
 *   <script src="https://meetrec.example/rrweb/record.js" data-autostart>
 *     {"publicAPIkey": "mr_..."}
 *   </script>
 *
 * or `rrwebCloud.start({publicAPIkey: "mr_..."})`. Config: publicAPIkey (required), serverUrl (default:
 * where this script came from), recordingId (default: one per browser tab, kept in sessionStorage), meta
 * (sent with addMeta at start), flushIntervalMs, frameBytes, maxBufferBytes, maxBufferFrames; any other
 * key is passed to rrweb.record as a record option.
 *
 * Delivery. Events are batched into frames (every flushIntervalMs, or at frameBytes of JSON) of NDJSON,
 * gzip-compressed when CompressionStream exists, and sent over the WebSocket ingest with a stream id
 * made per page view. A frame is kept until the server acknowledges it (`acked` of `ready` and
 * `upstream-result` counts the frames of the stream it stores), so while the server is away frames
 * wait, bounded by maxBufferBytes / maxBufferFrames (past them the oldest are dropped and counted in
 * stats().droppedFrames); the socket reconnects with jittered backoff (0.5 s doubling to 10 s) and on
 * `ready` sends only the frames after `acked`. When the page is hidden (visibilitychange, pagehide)
 * without a connected socket, the frames no socket has taken go in one sendBeacon to the batch ingest
 * (`?key=&stream=&after=&frames=`): the server stores them only at that place in the stream, so a
 * later socket's `ready` shows them stored and nothing is sent or stored twice. NDJSON frames are
 * concatenable, so a beacon is the frames' bytes end to end (gzip members, or plain text), made
 * synchronously: nothing waits for a promise while the page is going away.
 */
(function () {
  "use strict";
  if (window.rrwebCloud && window.rrwebCloud.meetrec) return; // the script was loaded twice

  var script = document.currentScript;
  var ID = /^[A-Za-z0-9._:-]{1,64}$/;
  var STORAGE_KEY = "meetrec.rrweb.recordingId";
  var DEFAULTS = {
    flushIntervalMs: 1000,
    frameBytes: 64 * 1024,
    maxBufferBytes: 20 * 1024 * 1024,
    maxBufferFrames: 10000,
  };
  var OWN = ["publicAPIkey", "serverUrl", "recordingId", "meta"].concat(Object.keys(DEFAULTS));
  var MIN_BACKOFF_MS = 500;
  var MAX_BACKOFF_MS = 10000;
  var BEACON_BYTES = 60 * 1024; // browsers refuse keepalive bodies past 64 KiB in flight
  var BAD_FRAME = [400, 413, 415]; // the server refused the frame after `acked` itself
  var gzipAvailable = typeof CompressionStream === "function";

  function randomId() {
    if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  function tabRecordingId() {
    try {
      var kept = sessionStorage.getItem(STORAGE_KEY);
      if (kept && ID.test(kept)) return kept;
      var made = randomId();
      sessionStorage.setItem(STORAGE_KEY, made);
      return made;
    } catch (e) { // storage disabled: one recording per page view instead
      return randomId();
    }
  }

  function scriptBase() {
    var src = script && script.src;
    if (!src) return location.origin;
    var m = /^(.*)\/rrweb\/record\.js(?:[?#].*)?$/.exec(src);
    return m ? m[1] : new URL(src).origin;
  }

  function scriptConfig() {
    var text = script ? script.textContent.trim() : "";
    if (!text) return {};
    try {
      return JSON.parse(text);
    } catch (e) {
      console.error("rrwebCloud: the script tag's text is not a JSON config", e);
      return {};
    }
  }

  // A gzip member holding `bytes` uncompressed (stored deflate blocks), made synchronously: a frame whose
  // compression has not finished can still join a beacon of gzip members.
  var CRC = (function () {
    var table = new Uint32Array(256);
    for (var n = 0; n < 256; n++) {
      var c = n;
      for (var k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
    return table;
  })();

  function crc32(bytes) {
    var c = 0xffffffff;
    for (var i = 0; i < bytes.length; i++) c = CRC[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  function storedGzip(bytes) {
    var blocks = Math.max(1, Math.ceil(bytes.length / 65535));
    var out = new Uint8Array(10 + blocks * 5 + bytes.length + 8);
    out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    var o = 10;
    for (var b = 0; b < blocks; b++) {
      var start = b * 65535;
      var len = Math.min(65535, bytes.length - start);
      out.set([b === blocks - 1 ? 1 : 0, len & 0xff, len >>> 8, ~len & 0xff, (~len >>> 8) & 0xff], o);
      out.set(bytes.subarray(start, start + len), o + 5);
      o += 5 + len;
    }
    var view = new DataView(out.buffer);
    view.setUint32(o, crc32(bytes), true);
    view.setUint32(o + 4, bytes.length >>> 0, true);
    return out;
  }

  async function gzip(text) {
    var stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function Recorder(config) {
    this.config = config;
    this.key = config.publicAPIkey;
    this.base = (config.serverUrl || scriptBase()).replace(/\/+$/, "").replace(/\/rrweb$/, "");
    this.recordingId = config.recordingId || tabRecordingId();
    this.stream = "pv-" + randomId();
    this.lines = []; // events not yet in a frame, as JSON
    this.lineBytes = 0;
    this.frames = []; // unacknowledged frames, oldest first: {n, text, gz, bytes, events}
    this.bufferBytes = 0;
    this.acked = 0; // frames of the stream the server said it stores
    this.handed = 0; // frames numbered up to here went to a socket or a beacon since the last `ready`
    this.socket = null;
    this.ready = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.stopping = false;
    this.waiters = [];
    this.stats = {
      recordedEvents: 0, frames: 0, droppedFrames: 0, droppedEvents: 0, beacons: 0, beaconFrames: 0,
      connections: 0, lastError: null,
    };
  }

  Recorder.prototype.start = function () {
    var self = this;
    var options = {};
    Object.keys(this.config).forEach(function (name) {
      if (OWN.indexOf(name) < 0) options[name] = self.config[name];
    });
    options.emit = function (event) { self.add(event); };
    this.stopRecording = rrweb.record(options);
    this.timer = setInterval(function () { self.cut(); }, this.config.flushIntervalMs);
    this.onHidden = function () { if (document.visibilityState === "hidden") self.hidden(); };
    this.onPageHide = function () { self.hidden(); };
    this.onBack = function () { if (document.visibilityState === "visible") self.connectSoon(0); };
    document.addEventListener("visibilitychange", this.onHidden);
    document.addEventListener("visibilitychange", this.onBack);
    window.addEventListener("pagehide", this.onPageHide);
    window.addEventListener("online", this.onBack);
    this.connect();
    if (this.config.meta) this.addMeta(this.config.meta);
  };

  Recorder.prototype.add = function (event) {
    if (this.stopping) return; // rrweb may still emit a throttled event after its stop
    var line = JSON.stringify(event);
    this.lines.push(line);
    this.lineBytes += line.length + 1;
    this.stats.recordedEvents++;
    if (this.lineBytes >= this.config.frameBytes) this.cut();
  };

  // The events recorded so far become the next frame; it is sent at once when a socket is ready.
  Recorder.prototype.cut = function () {
    if (!this.lines.length) return;
    var last = this.frames.length ? this.frames[this.frames.length - 1].n : this.handed;
    var frame = { n: Math.max(last, this.handed) + 1, text: this.lines.join("\n") + "\n", gz: null,
                  events: this.lines.length };
    frame.bytes = frame.text.length;
    this.lines = [];
    this.lineBytes = 0;
    this.frames.push(frame);
    this.bufferBytes += frame.bytes;
    this.stats.frames++;
    if (gzipAvailable) this.compress(frame);
    this.bound();
    this.pump();
  };

  Recorder.prototype.compress = function (frame) {
    var self = this;
    gzip(frame.text).then(function (bytes) {
      if (self.frames.indexOf(frame) < 0) return; // acknowledged or dropped meanwhile
      self.bufferBytes += bytes.length - frame.bytes;
      frame.gz = bytes;
      frame.text = null;
      frame.bytes = bytes.length;
    }, function () { /* the frame stays text: a text frame is read uncompressed */ });
  };

  // Never unbounded: past the limits the oldest frames go, counted in droppedFrames. Frames a ready
  // socket carries already are never dropped (the server stores them: dropping would miscount them as
  // lost), nor is the newest frame.
  Recorder.prototype.bound = function () {
    var dropped = false;
    var carried = this.ready && this.socket ? this.handed : this.acked;
    while (this.frames.length > this.config.maxBufferFrames || this.bufferBytes > this.config.maxBufferBytes) {
      var oldest = -1;
      for (var i = 0; i < this.frames.length - 1; i++) {
        if (this.frames[i].n > carried) { oldest = i; break; }
      }
      if (oldest < 0) break;
      this.discard(this.frames.splice(oldest, 1)[0]);
      dropped = true;
    }
    if (dropped) {
      this.renumber();
      this.settle();
    }
  };

  Recorder.prototype.discard = function (frame) {
    this.bufferBytes -= frame.bytes;
    this.stats.droppedFrames++;
    this.stats.droppedEvents += frame.events;
  };

  // Frames no transport has taken are numbered right after the last one that was: the server numbers
  // the frames it receives one after another.
  Recorder.prototype.renumber = function () {
    var next = this.handed;
    this.frames.forEach(function (frame) {
      if (frame.n > this.handed) frame.n = ++next;
    }, this);
  };

  Recorder.prototype.connect = function () {
    this.retryTimer = null;
    if (this.socket || (this.stopping && this.drained())) return;
    var self = this;
    var query = new URLSearchParams({ key: this.key, stream: this.stream, contentType: "application/x-ndjson" });
    if (gzipAvailable) query.set("contentEncoding", "gzip");
    var url = this.base.replace(/^http/, "ws") + "/rrweb/recordings/" + encodeURIComponent(this.recordingId) +
      "/ingest/ws?" + query;
    var socket;
    try {
      socket = new WebSocket(url);
    } catch (e) {
      this.stats.lastError = String(e);
      this.retry();
      return;
    }
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onmessage = function (m) { if (self.socket === socket) self.message(m.data); };
    socket.onclose = function () {
      if (self.socket !== socket) return;
      self.socket = null;
      self.ready = false;
      if (!(self.stopping && self.drained())) self.retry();
    };
  };

  Recorder.prototype.retry = function () {
    var delay = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * Math.pow(2, this.attempt));
    this.attempt++;
    this.connectSoon(delay * (0.5 + Math.random() / 2));
  };

  Recorder.prototype.connectSoon = function (delay) {
    if (this.socket || this.retryTimer !== null && delay > 0) return;
    clearTimeout(this.retryTimer);
    var self = this;
    this.retryTimer = setTimeout(function () { self.connect(); }, delay);
  };

  Recorder.prototype.message = function (data) {
    var msg;
    try {
      msg = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (msg.type === "ready") {
      this.attempt = 0;
      this.stats.connections++;
      this.acknowledge(msg.acked);
      this.handed = this.acked; // everything after it goes on this socket, numbered from here
      this.renumber();
      this.ready = true;
      this.pump();
    } else if (msg.type === "upstream-result") {
      this.acknowledge(msg.acked);
      if (this.stopping && this.drained()) this.end();
    } else if (msg.type === "error") {
      this.stats.lastError = msg.status + " " + msg.message;
      this.acknowledge(msg.acked);
      if (BAD_FRAME.indexOf(msg.status) >= 0 && this.frames.length && this.frames[0].n === this.acked + 1) {
        this.discard(this.frames.shift()); // resending a frame the server cannot read would loop forever
        this.settle();
      }
    }
  };

  Recorder.prototype.acknowledge = function (acked) {
    if (typeof acked !== "number") return;
    while (this.frames.length && this.frames[0].n <= acked) this.bufferBytes -= this.frames.shift().bytes;
    this.acked = acked;
    this.settle();
  };

  // Resolve the flush() promises whose frames are all delivered (or dropped).
  Recorder.prototype.settle = function () {
    this.waiters = this.waiters.filter(function (waiter) {
      if (this.frames.indexOf(waiter.frame) >= 0) return true;
      waiter.resolve(true);
      return false;
    }, this);
  };

  // Send every frame no transport has taken over the ready socket, in order.
  Recorder.prototype.pump = function () {
    if (!this.ready || !this.socket) return;
    for (var i = 0; i < this.frames.length; i++) {
      var frame = this.frames[i];
      if (frame.n <= this.handed) continue;
      this.socket.send(frame.gz || frame.text); // a text frame is read uncompressed
      this.handed = frame.n;
    }
  };

  Recorder.prototype.drained = function () {
    return !this.lines.length && !this.frames.length;
  };

  // The page may be going away: a ready socket takes the frames (the server stores what it received
  // when a socket closes); without one, the frames no socket has taken go in one beacon.
  Recorder.prototype.hidden = function () {
    this.cut();
    if (this.ready && this.socket) {
      this.socket.send(JSON.stringify({ type: "flush" }));
    } else {
      this.beacon();
    }
  };

  Recorder.prototype.beacon = function () {
    var fresh = this.frames.filter(function (frame) { return frame.n > this.handed; }, this);
    var parts = [];
    var size = 0;
    for (var i = 0; i < fresh.length; i++) {
      var part = gzipAvailable ? fresh[i].gz || storedGzip(new TextEncoder().encode(fresh[i].text)) : fresh[i].text;
      size += part.length;
      if (parts.length && size > BEACON_BYTES) break;
      parts.push(part);
    }
    if (!parts.length || typeof navigator.sendBeacon !== "function") return;
    var query = new URLSearchParams({ key: this.key, stream: this.stream, after: String(this.handed),
                                      frames: String(parts.length) });
    if (gzipAvailable) query.set("contentEncoding", "gzip");
    var url = this.base + "/rrweb/recordings/" + encodeURIComponent(this.recordingId) + "/ingest?" + query;
    if (navigator.sendBeacon(url, new Blob(parts, { type: "text/plain" }))) {
      this.handed += parts.length;
      this.stats.beacons++;
      this.stats.beaconFrames += parts.length;
    }
  };

  Recorder.prototype.flush = function () {
    this.cut();
    var self = this;
    if (!this.frames.length) return Promise.resolve(true);
    if (this.ready && this.socket) this.socket.send(JSON.stringify({ type: "flush" }));
    var frame = this.frames[this.frames.length - 1];
    return new Promise(function (resolve) { self.waiters.push({ frame: frame, resolve: resolve }); });
  };

  Recorder.prototype.end = function () {
    if (this.socket && this.ready) this.socket.send(JSON.stringify({ type: "end" }));
  };

  // Recording stops now; what was recorded is still delivered, then the socket ends.
  Recorder.prototype.stop = function () {
    if (this.stopping) return this.flush();
    this.stopping = true;
    if (this.stopRecording) this.stopRecording();
    clearInterval(this.timer);
    document.removeEventListener("visibilitychange", this.onHidden);
    document.removeEventListener("visibilitychange", this.onBack);
    window.removeEventListener("pagehide", this.onPageHide);
    window.removeEventListener("online", this.onBack);
    var done = this.flush();
    if (this.drained()) this.end();
    return done;
  };

  Recorder.prototype.addMeta = function (meta) {
    var url = this.base + "/rrweb/recordings/" + encodeURIComponent(this.recordingId) + "/meta";
    return fetch(url, {
      method: "POST",
      headers: { Authorization: "Bearer " + this.key, "Content-Type": "application/json" },
      body: JSON.stringify(meta),
    }).then(function (answer) { return answer.ok; }, function () { return false; });
  };

  Recorder.prototype.snapshot = function () {
    var out = {};
    Object.keys(this.stats).forEach(function (name) { out[name] = this.stats[name]; }, this);
    out.pendingFrames = this.frames.length;
    out.pendingEvents = this.lines.length;
    out.bufferedBytes = this.bufferBytes;
    out.ackedFrames = this.acked;
    out.connected = this.ready;
    out.stream = this.stream;
    return out;
  };

  var defaults = scriptConfig();
  var current = null;

  window.rrwebCloud = {
    meetrec: true,
    start: function (config) {
      if (current && !current.stopping) return current.recordingId;
      var merged = Object.assign({}, DEFAULTS, defaults, config || {});
      if (!merged.publicAPIkey) throw new Error("rrwebCloud.start: publicAPIkey is required");
      if (merged.recordingId && !ID.test(merged.recordingId)) {
        throw new Error("rrwebCloud.start: recordingId must be 1..64 of A-Z a-z 0-9 . _ : -");
      }
      current = new Recorder(merged);
      current.start();
      return current.recordingId;
    },
    stop: function () { return current ? current.stop() : Promise.resolve(true); },
    flush: function () { return current ? current.flush() : Promise.resolve(true); },
    getRecordingId: function () { return current ? current.recordingId : null; },
    addMeta: function (meta) {
      return current ? current.addMeta(meta) : Promise.reject(new Error("rrwebCloud: not started"));
    },
    stats: function () { return current ? current.snapshot() : null; },
  };

  if (script && script.hasAttribute("data-autostart")) window.rrwebCloud.start();
})();
