/*
 * tapwars client. Small on purpose: htmx (+ ws/sse extensions) does the
 * requests and the live swaps; this file only adds
 *   1. the connection indicator (#connection-status),
 *   2. the WebSocket -> SSE fallback for data-transport="auto",
 *   3. an optimistic count of your own taps (#my-taps) that never goes back,
 *   4. Space / Enter to tap, and a short error note on refused taps,
 *   5. highlighting your own leaderboard row after live updates,
 *   6. sending taps: over the open WebSocket, else POST /api/tap.
 * Loaded with `defer` after htmx and its extensions; needs nothing else.
 * htmx 2.0.11 event names used: htmx:wsOpen, htmx:wsClose, htmx:wsError
 * (htmx-ext-ws 2.0.4), htmx:sseOpen, htmx:sseError (htmx-ext-sse 2.2.4),
 * htmx:oobBeforeSwap, htmx:oobAfterSwap, htmx:afterSwap;
 * htmx.createWebSocket (htmx-ext-ws opens its socket with it).
 */
(function () {
  'use strict';

  if (!window.htmx || !document.body) return;

  var WS_OPEN_TIMEOUT_MS = 3000;   // auto: fall back if no WebSocket by then
  var WS_HEALTHY_MS = 10000;       // a socket open this long counts as healthy
  var WS_MAX_SHORT_CLOSES = 3;     // auto: fall back after this many short-lived sockets
  var WS_EXT_RETRY_CODES = [1006, 1011, 1012, 1013]; // htmx-ext-ws reconnects only on these
  var KEY_REPEAT_MS = 90;          // held-down key: at most ~11 taps per second
  var ERROR_SHOW_MS = 2500;
  var TAP_BATCH_MS = 75;           // taps within this window go as one message
  var MAX_BURST = 50;              // most taps one message (or request) may carry

  var body = document.body;
  var byId = function (id) { return document.getElementById(id); };

  /* ---------------------------------------------------------------- 1 ---- */

  function setStatus(state, text) {
    var el = byId('connection-status');
    if (!el) return;
    el.textContent = text;
    el.setAttribute('data-state', state);
  }

  // Events fired on an element that was already removed (the old WebSocket
  // container after the fallback) no longer reach body; this guards the rest.
  function attached(e) { return body.contains(e.target); }

  /* ---------------------------------------------------------------- 2 ---- */

  var live = byId('live');
  var transport = live ? live.getAttribute('data-transport') : '';
  var fellBack = false;      // auto mode switched to SSE
  var wsEverOpened = false;
  var wsOpenedAt = 0;        // 0 while no socket is open
  var wsShortCloses = 0;     // consecutive sockets that died before WS_HEALTHY_MS
  var wsRetryTimer = 0;

  // The markup the server renders for Transport "sse": <div hx-ext="sse"
  // sse-connect="/events"><div id="live-sink" sse-swap="state" hidden>.
  // The leaderboard page names its own stream in data-sse-url.
  function sseMarkup() {
    var outer = document.createElement('div');
    outer.setAttribute('hx-ext', 'sse');
    outer.setAttribute('sse-connect', live.getAttribute('data-sse-url') || '/events');
    var sink = document.createElement('div');
    sink.id = 'live-sink';
    sink.setAttribute('sse-swap', 'state');
    sink.hidden = true;
    outer.appendChild(sink);
    return outer.outerHTML;
  }

  function fallBackToSSE() {
    if (fellBack || !live) return;
    fellBack = true;
    clearTimeout(wsRetryTimer);
    socketClosed(); // its close event will not reach us once it is swapped out
    setStatus('reconnecting', 'reconnecting');
    // An innerHTML swap through htmx runs its cleanup on the old container,
    // which makes htmx-ext-ws close the socket, and processes the new markup.
    htmx.swap(live, sseMarkup(), { swapStyle: 'innerHTML' });
    htmx.process(live); // no-op if the swap already processed it
  }

  if (live && transport === 'auto') {
    setTimeout(function () {
      if (!wsEverOpened) fallBackToSSE();
    }, WS_OPEN_TIMEOUT_MS);
  }

  // Keep the page's socket to send taps on (6). The ws extension may still
  // have a reconnect timer pending when the page falls back to SSE; any
  // socket it opens after the fallback is closed at once (it then sees its
  // element is gone and stops for good).
  var pageSocket = null;
  var createWebSocket = htmx.createWebSocket;
  if (createWebSocket) {
    htmx.createWebSocket = function (url) {
      var socket = createWebSocket(url);
      if (fellBack) socket.close();
      else pageSocket = socket;
      return socket;
    };
  }

  body.addEventListener('htmx:wsOpen', function (e) {
    if (!attached(e)) return;
    wsEverOpened = true;
    wsOpenedAt = Date.now();
    setStatus('live', 'live');
  });

  body.addEventListener('htmx:wsError', function (e) {
    if (attached(e)) setStatus('reconnecting', 'reconnecting');
  });

  body.addEventListener('htmx:wsClose', function (e) {
    if (!attached(e)) return;
    socketClosed();
    if (fellBack) return;
    setStatus('reconnecting', 'reconnecting');
    var healthy = wsOpenedAt && Date.now() - wsOpenedAt >= WS_HEALTHY_MS;
    wsOpenedAt = 0;
    wsShortCloses = healthy ? 0 : wsShortCloses + 1;
    if (transport === 'auto' && wsShortCloses >= WS_MAX_SHORT_CLOSES) {
      // Tell "WebSockets are blocked on the way" from "the server is down":
      // fall back only when the server answers plain HTTP. During an outage
      // keep retrying the WebSocket and check again at the next failure.
      fetch('/healthz', { cache: 'no-store' }).then(function (r) {
        if (r.ok) fallBackToSSE();
        else wsShortCloses = WS_MAX_SHORT_CLOSES - 1;
      }, function () { wsShortCloses = WS_MAX_SHORT_CLOSES - 1; });
    }
    // htmx-ext-ws does not reconnect after a clean close (e.g. 1000/1001 when
    // the server restarts); do it ourselves with a growing, jittered delay.
    var code = e.detail && e.detail.event ? e.detail.event.code : 0;
    var wrapper = e.detail && e.detail.socketWrapper;
    if (WS_EXT_RETRY_CODES.indexOf(code) < 0 && wrapper && wrapper.reconnect) {
      var delay = Math.min(30000, 1000 * Math.pow(2, wsShortCloses)) * (0.5 + Math.random() / 2);
      clearTimeout(wsRetryTimer);
      wsRetryTimer = setTimeout(function () {
        if (!fellBack && body.contains(e.target)) wrapper.reconnect();
      }, delay);
    }
  });

  body.addEventListener('htmx:sseOpen', function (e) {
    if (!attached(e)) return;
    if (fellBack) setStatus('fallback', 'fallback (SSE)');
    else setStatus('live', 'live (SSE)');
  });

  body.addEventListener('htmx:sseError', function (e) {
    if (attached(e)) setStatus('reconnecting', 'reconnecting');
  });

  /* ---------------------------------------------------------------- 3 ---- */

  // #my-taps carries data-applied = taps the server has counted so far. Taps
  // the server acknowledged (202) but not yet counted are added locally, so
  // the number moves on every tap and never runs backwards:
  //   shown = max(applied, baseline + acked)
  // Invariant: baseline + acked never exceeds the player's true total.
  // A tap can be counted (and pushed live) before its own 202 arrives, so
  // only a count beyond baseline + acked + inflight proves taps from
  // elsewhere; rebasing on less would count an in-flight tap twice.
  var baseline = null;   // applied value the local count starts from
  var acked = 0;         // taps acknowledged since baseline
  var inflight = 0;      // taps sent whose answer has not arrived yet
  var lastApplied = null;

  function renderMyTaps() {
    var el = byId('my-taps');
    if (!el) return;
    var applied = parseInt(el.getAttribute('data-applied'), 10);
    if (isNaN(applied)) return;
    if (baseline === null || applied < lastApplied) {
      // first sight, or the score went down: an admin reset. Start over.
      baseline = applied;
      acked = 0;
    } else if (applied > baseline + acked + inflight) {
      // taps counted that we did not send (another tab/device): rebase so
      // our next tap shows at once.
      baseline = applied - acked - inflight;
    }
    lastApplied = applied;
    var shown = String(Math.max(applied, baseline + acked));
    if (el.textContent !== shown) el.textContent = shown;
  }

  var errorTimer = 0;
  function showTapError(message) {
    var el = byId('tap-error');
    if (!el) return;
    // The element stays in the page (empty when idle) so that screen
    // readers, which watch role=status regions, announce the change.
    el.textContent = message;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(function () { el.textContent = ''; }, ERROR_SHOW_MS);
  }

  // After a 429 the page sends no taps for the Retry-After the server gave
  // (at least 1 s): taps meanwhile are refused here with the server's
  // message, as the server would refuse them. A page that sent on would
  // count nothing more, and its socket would be closed for its refusals.
  var tooFastUntil = 0;
  var tooFastMessage = '';

  function tooFast(retryAfter, message) {
    var secs = parseInt(retryAfter, 10);
    tooFastUntil = Date.now() + Math.max(1, isNaN(secs) ? 1 : secs) * 1000;
    tooFastMessage = message || 'Too fast! Slow down a little.';
  }

  function holdingTaps() { return Date.now() < tooFastUntil; }

  // A 401 means the player is gone from the game (kicked, or left out by
  // an import): the page says so and goes to the join form.
  var leaving = false;

  // tapRefused shows why taps were refused (the server's message), holds
  // taps after a 429, and leaves after a 401.
  function tapRefused(status, json, retryAfter) {
    if (status === 401) {
      leaving = true;
      showTapError('You are no longer in this game. Taking you to the join page…');
      setTimeout(function () { location.assign('/'); }, ERROR_SHOW_MS);
      return;
    }
    var msg = json && typeof json.error === 'string' && json.error;
    if (!msg) msg = status === 429 ? 'Too fast! Slow down a little.' :
      status === 503 ? 'Server busy, try again.' : 'Tap not counted (' + status + ').';
    if (status === 429) tooFast(retryAfter, msg);
    showTapError(msg);
  }

  /* ---------------------------------------------------------------- 5 ---- */

  var meHolder = document.querySelector('[data-me-id]');
  var meId = meHolder ? meHolder.getAttribute('data-me-id') : '';

  // The live leaderboard is the same for everyone; mark our own row here.
  function markMyRows() {
    if (!meId) return;
    var rows = document.querySelectorAll('#leaderboard li[data-player-id], #leaderboard-full li[data-player-id]');
    for (var i = 0; i < rows.length; i++) {
      var mine = rows[i].getAttribute('data-player-id') === meId; // no selector built from data
      rows[i].classList.toggle('is-me', mine);
      if (mine) rows[i].setAttribute('aria-current', 'true');
      else rows[i].removeAttribute('aria-current');
    }
  }

  // Keep the tug-of-war bar element and copy the new attributes onto it, so
  // its width animates (a replaced element would just jump).
  body.addEventListener('htmx:oobBeforeSwap', function (e) {
    var d = e.detail;
    if (!d || !d.target || d.target.id !== 'tug-bar' || !d.fragment) return;
    var next = d.fragment.firstElementChild;
    if (!next || next.id !== 'tug-bar') return;
    var cur = d.target, i;
    for (i = cur.attributes.length - 1; i >= 0; i--) {
      if (!next.hasAttribute(cur.attributes[i].name)) cur.removeAttribute(cur.attributes[i].name);
    }
    for (i = 0; i < next.attributes.length; i++) {
      cur.setAttribute(next.attributes[i].name, next.attributes[i].value);
    }
    cur.replaceChildren.apply(cur, Array.prototype.slice.call(next.childNodes));
    d.shouldSwap = false;
  });

  // After a live swap (WebSocket and SSE both use htmx's OOB swap, which
  // fires htmx:oobAfterSwap on the new element; a plain swap fires
  // htmx:afterSwap): re-apply the max rule to a fresh #my-taps and re-mark
  // our leaderboard row. Both run in the same task as the swap, before paint.
  function afterSwap(e) {
    var id = e.target && e.target.id;
    if (id === 'my-taps') renderMyTaps();
    else if (id === 'leaderboard' || id === 'leaderboard-full') markMyRows();
    else if (id === 'tap-ack') tapAnswered(e.target, true);
    else if (id === 'tap-error') tapAnswered(e.target, false);
    else if (id === 'round') renderRound();
  }
  body.addEventListener('htmx:oobAfterSwap', afterSwap);
  body.addEventListener('htmx:afterSwap', afterSwap);

  /* ---------------------------------------------------------------- 4 ---- */

  var tapButton = byId('tap-button');
  var lastKeyTap = 0;

  function isTypingOrControl(t) {
    if (!t || t === body || t === tapButton || !t.closest) return false;
    return !!t.closest('input, textarea, select, [contenteditable], button, a[href], summary');
  }

  function pressFeedback() {
    tapButton.classList.add('is-pressed');
    setTimeout(function () { tapButton.classList.remove('is-pressed'); }, 90);
  }

  if (tapButton) {
    // iOS Safari only applies :active (our press feedback) when some
    // touchstart listener exists.
    document.addEventListener('touchstart', function () {}, { passive: true });

    // Our key: Space or Enter, no modifier, not typing, not on another control.
    var isTapKey = function (e) {
      var k = e.key;
      if (k !== ' ' && k !== 'Spacebar' && k !== 'Enter') return false;
      if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return false;
      return !tapButton.disabled && !isTypingOrControl(e.target);
    };
    document.addEventListener('keydown', function (e) {
      if (!isTapKey(e)) return;
      e.preventDefault(); // no page scroll on Space, no native button click
      var now = Date.now();
      if (e.repeat && now - lastKeyTap < KEY_REPEAT_MS) return;
      lastKeyTap = now;
      pressFeedback();
      tapButton.click();
    });
    // The browser's own actions for these keys (scroll on Space, click on a
    // focused button) run on keypress/keyup; we already tapped on keydown.
    document.addEventListener('keypress', function (e) {
      if (isTapKey(e)) e.preventDefault();
    });
    tapButton.addEventListener('keyup', function (e) {
      if (e.key === ' ' || e.key === 'Spacebar') e.preventDefault();
    });
  }

  /* ---------------------------------------------------------------- 6 ---- */

  // A tap is not an htmx request. Taps within TAP_BATCH_MS go as one
  // message {"count": n, "seq": s} over the page's open WebSocket, and the
  // server answers each with a #tap-ack (Kafka has it) or #tap-error
  // fragment echoing seq; with no open socket (SSE, or while it is down)
  // they go as one POST /api/tap with their count. Nothing is queued: htmx's
  // request queue (hx-sync) would strand the taps behind a slow POST once
  // the socket is back, since a queued request sent another way never
  // releases the rest. Taps the socket took but never answered may or may
  // not count; they are never sent again (no double count), and the live
  // #my-taps shows them if they counted.
  var tapSeq = 0;
  var unanswered = {};   // seq -> taps sent over the socket, no answer yet
  var batched = 0;       // taps waiting for the batch window
  var batchTimer = 0;

  function socketOpen() {
    return !fellBack && wsOpenedAt > 0 && pageSocket && pageSocket.readyState === 1;
  }

  if (tapButton) {
    tapButton.addEventListener('click', function () {
      if (leaving) return;
      if (holdingTaps()) {
        showTapError(tooFastMessage);
        return;
      }
      batched++;
      inflight++;
      if (!batchTimer) batchTimer = setTimeout(flushTaps, TAP_BATCH_MS);
    });
  }

  function flushTaps() {
    clearTimeout(batchTimer);
    batchTimer = 0;
    var n = batched;
    batched = 0;
    if (n === 0) return;
    if (holdingTaps()) { // a 429 came while these waited for the window
      inflight = Math.max(0, inflight - n);
      showTapError(tooFastMessage);
      renderMyTaps();
      return;
    }
    if (!socketOpen()) {
      postTaps(n);
      return;
    }
    while (n > 0) {
      var count = Math.min(n, MAX_BURST);
      n -= count;
      tapSeq++;
      unanswered[tapSeq] = count;
      pageSocket.send(JSON.stringify({ count: count, seq: tapSeq }));
    }
  }

  // postTaps sends taps when there is no open socket.
  function postTaps(n) {
    var count = Math.min(n, MAX_BURST);
    fetch('/api/tap', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ count: count })
    }).then(function (r) {
      inflight = Math.max(0, inflight - count);
      if (r.ok) {
        acked += count;
        renderMyTaps();
        return;
      }
      var retryAfter = r.headers.get('Retry-After');
      return r.json().then(function (j) { tapRefused(r.status, j, retryAfter); },
        function () { tapRefused(r.status, null, retryAfter); });
    }, function () {
      inflight = Math.max(0, inflight - count);
      showTapError('No connection. Tap again in a moment.');
    });
    if (n > count) postTaps(n - count);
  }

  // tapAnswered handles a swapped-in #tap-ack or #tap-error.
  function tapAnswered(el, ok) {
    var seq = el.getAttribute('data-seq');
    // [i18-log] 504: no answer in time, the taps may still count; their
    // ack or error follows with the same seq, so they stay unanswered.
    if (!ok && el.getAttribute('data-status') === '504') { showTapError(el.textContent); return; }
    var count = seq ? unanswered[seq] : undefined;
    if (count !== undefined) {
      delete unanswered[seq];
      inflight = Math.max(0, inflight - count);
      if (ok) acked += count;
      renderMyTaps();
    }
    if (!ok) tapRefused(parseInt(el.getAttribute('data-status'), 10), { error: el.textContent }, el.getAttribute('data-retry-after'));
  }

  // The socket closed: taps still waiting for the window go by POST; taps
  // sent without an answer are given up (not resent: they may have counted).
  function socketClosed() {
    var lost = 0;
    for (var seq in unanswered) {
      if (Object.prototype.hasOwnProperty.call(unanswered, seq)) lost += unanswered[seq];
    }
    unanswered = {};
    inflight = Math.max(0, inflight - lost);
    if (batched > 0) flushTaps();
    if (lost > 0) showTapError('Connection lost: ' + lost + (lost === 1 ? ' tap' : ' taps') + ' may not have counted.');
    renderMyTaps();
  }

  /* ---------------------------------------------------------------- 7 ---- */

  // Timed rounds. #round carries the schedule (unix ms in data attributes,
  // the server's clock); the page counts down by itself every
  // ROUND_TICK_MS, and the live stream replaces #round when the status
  // changes (start, bell, final result).
  // The tap button is disabled outside play with the reason beside it; the
  // polite region #round-announce says when a countdown starts and the
  // result, never every tick.
  var ROUND_TICK_MS = 200;
  var announced = '';

  // The round's times are the server's clock, and a phone's clock may be
  // seconds or minutes off. The page carries the server's time when it was
  // made (meta server-time); the phone's clock at that moment is taken as
  // the middle of the page's request (Navigation Timing), so the offset is
  // right to within half the time to the first byte.
  var clockOffset = (function () {
    var meta = document.querySelector('meta[name="server-time"]');
    var server = meta ? parseInt(meta.getAttribute('content'), 10) : NaN;
    if (isNaN(server) || !window.performance || !performance.now) return 0;
    var nav = performance.getEntriesByType ? performance.getEntriesByType('navigation')[0] : null;
    var sinceOrigin = nav && nav.responseStart > 0 ? (nav.requestStart + nav.responseStart) / 2 : 0;
    return server - (Date.now() - performance.now() + sinceOrigin);
  })();

  function serverNow() { return Date.now() + clockOffset; }

  function num(el, name) {
    var v = parseInt(el.getAttribute(name), 10);
    return isNaN(v) ? 0 : v;
  }

  function clock(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    var m = Math.floor(s / 60);
    s = s % 60;
    return m + ':' + (s < 10 ? '0' : '') + s;
  }

  function announce(key, text) {
    var el = byId('round-announce');
    if (!el || announced === key) return;
    announced = key;
    el.textContent = text;
  }

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  function renderRound() {
    var r = byId('round');
    var why = byId('round-why');
    var playing = true, reason = '';
    if (r && r.getAttribute('data-mode') === 'timed') {
      var now = serverNow();
      var n = r.getAttribute('data-number');
      var starts = num(r, 'data-starts-at'), ends = num(r, 'data-ends-at');
      var next = num(r, 'data-next-starts-at');
      var final = r.getAttribute('data-final') === 'true';
      var text, nextText = '';
      if (now < starts) {
        var left = Math.ceil((starts - now) / 1000);
        text = left > 3 ? 'Starts in ' + clock(starts - now) : left + '…';
        playing = false;
        reason = 'The round starts in ' + left + ' s.';
        announce('c' + n, 'Round ' + n + ' starts in ' + left + ' seconds.');
      } else if (now < ends) {
        text = now - starts < 1000 ? 'TAP!' : clock(ends - now) + ' left';
      } else {
        playing = false;
        text = final ? 'Round over' : 'Time! Counting the last taps…';
        reason = 'The round is over.';
        if (next > now) {
          nextText = 'Next round in ' + clock(next - now);
          reason = 'The round is over; the next one starts in ' + Math.ceil((next - now) / 1000) + ' s.';
        }
        if (final) announce('r' + n, 'Round ' + n + ' is over. ' + (r.getAttribute('data-result') || ''));
      }
      setText(r.querySelector('[data-round-clock]'), text);
      setText(r.querySelector('[data-round-next]'), nextText);
      r.setAttribute('data-live-status', now < starts ? 'countdown' : now < ends ? 'running' : 'over');
    }
    if (tapButton) tapButton.disabled = !playing;
    if (why) {
      setText(why, reason);
      why.hidden = playing;
    }
  }

  setInterval(renderRound, ROUND_TICK_MS);

  renderRound();
  renderMyTaps();
  markMyRows();
})();
