/*
 * tapwars client. Small on purpose: htmx (+ ws/sse extensions) does the
 * requests and the live swaps; this file only adds
 *   numbers in the viewer's locale (formatCount) and local times,
 *   1. the connection indicator (#connection-status) and, after 2 s without
 *      a live stream, the connection-lost notice (#conn-lost),
 *   2. the WebSocket -> SSE fallback for data-transport="auto", and short,
 *      capped, jittered reconnects,
 *   3. an optimistic count of your own taps (#my-taps) that never goes back,
 *   4. Space / Enter to tap, and a short error note on refused taps; a kick
 *      (#kicked over the live stream, or a 401) leaves for the join page,
 *   5. highlighting your own leaderboard row after live updates,
 *   6. taps on pointerdown, one per finger, sent over the open WebSocket,
 *      else POST /api/tap,
 *   7. the round clock, the personal result at the bell and the wake lock.
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

  /* ----------------------------------------------------------- numbers --- */

  // Counts are rendered by the server as "9,999,999" with the raw value in
  // data-n and a width class num--wN (views/numbers.go); here they are
  // re-formatted in the viewer's locale. The width class lets app.css size
  // the number to its container (.fit), so it never wraps or overflows.
  var numberFormat = (window.Intl && Intl.NumberFormat) ? new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 }) : null;

  // formatCount is n with the viewer's thousands separators ("9,999,999",
  // "9.999.999", "9 999 999").
  function formatCount(n) {
    return numberFormat ? numberFormat.format(n) : String(n);
  }

  // setCount shows n in el (a .num element): text, data-n and width class.
  function setCount(el, n) {
    var text = formatCount(n);
    if (el.textContent !== text) el.textContent = text;
    el.setAttribute('data-n', String(n));
    fitClass(el, text.length);
  }

  function fitClass(el, len) {
    var want = 'num--w' + Math.max(1, Math.min(14, len));
    if (el.classList.contains(want)) return;
    var cls = Array.prototype.slice.call(el.classList);
    for (var i = 0; i < cls.length; i++) {
      if (cls[i].indexOf('num--w') === 0) el.classList.remove(cls[i]);
    }
    el.classList.add(want);
  }

  // formatNumbers re-formats every [data-n] in root (root included).
  function formatNumbers(root) {
    if (!root || !root.querySelectorAll) return;
    var els = Array.prototype.slice.call(root.querySelectorAll('[data-n]'));
    if (root.hasAttribute && root.hasAttribute('data-n')) els.push(root);
    for (var i = 0; i < els.length; i++) {
      var n = parseInt(els[i].getAttribute('data-n'), 10);
      if (!isNaN(n) && els[i].id !== 'my-taps') setCount(els[i], n);
    }
  }

  // Times (<time datetime data-local>, e.g. /rounds) in the viewer's local
  // time and language; the server wrote them in UTC.
  var timeFormat = (window.Intl && Intl.DateTimeFormat) ? new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : null;
  function localTimes(root) {
    if (!timeFormat || !root || !root.querySelectorAll) return;
    var els = root.querySelectorAll('time[datetime][data-local]');
    for (var i = 0; i < els.length; i++) {
      var d = new Date(els[i].getAttribute('datetime'));
      if (!isNaN(d.getTime())) els[i].textContent = timeFormat.format(d);
    }
  }

  // For the other pages' own scripts (e.g. the presenter screen).
  window.tapwars = { formatCount: formatCount, formatNumbers: formatNumbers, setCount: setCount };

  /* ---------------------------------------------------------------- 1 ---- */

  function setStatus(state, text) {
    var el = byId('connection-status');
    if (!el) return;
    el.textContent = text;
    el.setAttribute('data-state', state);
  }

  // Connection lost: after LOST_AFTER_MS without an open live stream (the
  // WebSocket or SSE is down, not merely the server's Redis), an overlay
  // says so in words: over the board on the presenter screen, as a banner
  // on the phone saying that taps are not being sent. Any page with #live
  // gets it; the markup is made here (no server part to keep in step).
  var LOST_AFTER_MS = 2000;
  var streamUp = false;
  var lostTimer = 0;

  function streamState(up) {
    streamUp = up;
    if (up) {
      clearTimeout(lostTimer);
      lostTimer = 0;
      showLost(false);
    } else if (!lostTimer) {
      lostTimer = setTimeout(function () {
        lostTimer = 0;
        if (!streamUp) showLost(true);
      }, LOST_AFTER_MS);
    }
  }

  function showLost(on) {
    if (on && leaving) return; // a kicked page is on its way out
    var el = byId('conn-lost');
    if (!el) {
      if (!on) return;
      var taps = !!byId('tap-button');
      el = document.createElement('div');
      el.id = 'conn-lost';
      el.className = 'conn-lost';
      el.setAttribute('role', 'alert');
      var title = document.createElement('p');
      title.className = 'conn-lost__title';
      title.textContent = taps ? 'No connection' : 'Connection lost';
      var text = document.createElement('p');
      text.className = 'conn-lost__text';
      text.textContent = taps ? 'Your taps are not being sent. Reconnecting…' : 'Reconnecting… The numbers shown are not live.';
      el.appendChild(title);
      el.appendChild(text);
      body.appendChild(el);
    }
    el.hidden = !on;
    body.classList.toggle('is-offline', on);
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

  // Reconnect delays: short and capped, so a page is back within about
  // RECONNECT_MAX_MS of the server's return; jittered, so a room of phones
  // does not come back in one burst. htmx-ext-ws asks for its own
  // reconnects (after 1006, 1011, 1012, 1013) through wsReconnectDelay.
  var RECONNECT_MAX_MS = 1500;
  function reconnectDelay(tries) {
    var cap = Math.min(RECONNECT_MAX_MS, 250 * Math.pow(2, Math.min(tries, 6)));
    return cap * (0.5 + Math.random() / 2);
  }
  htmx.config.wsReconnectDelay = reconnectDelay;

  body.addEventListener('htmx:wsOpen', function (e) {
    if (!attached(e)) return;
    wsEverOpened = true;
    wsOpenedAt = Date.now();
    streamState(true);
    setStatus('live', 'live');
  });

  // A socket that never opened in auto mode is not an outage yet: the page
  // may be about to fall back to SSE (the timer at the end covers it).
  function socketDown() {
    if (wsEverOpened || transport !== 'auto') streamState(false);
  }

  body.addEventListener('htmx:wsError', function (e) {
    if (!attached(e)) return;
    socketDown();
    setStatus('reconnecting', 'reconnecting');
  });

  body.addEventListener('htmx:wsClose', function (e) {
    if (!attached(e)) return;
    socketClosed();
    if (fellBack || leaving) return;
    socketDown();
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
      var delay = reconnectDelay(wsShortCloses);
      clearTimeout(wsRetryTimer);
      wsRetryTimer = setTimeout(function () {
        if (!fellBack && body.contains(e.target)) wrapper.reconnect();
      }, delay);
    }
  });

  body.addEventListener('htmx:sseOpen', function (e) {
    if (!attached(e)) return;
    streamState(true);
    if (fellBack) setStatus('fallback', 'fallback (SSE)');
    else setStatus('live', 'live (SSE)');
  });

  body.addEventListener('htmx:sseError', function (e) {
    if (!attached(e)) return;
    streamState(false);
    setStatus('reconnecting', 'reconnecting');
  });

  /* ---------------------------------------------------------------- 3 ---- */

  // #my-taps carries data-applied = taps the server has counted so far. Taps
  // made here that the server will surely accept are added at once
  // (optimistic); others when it acknowledged them (202):
  //   shown = max(applied, baseline + acked + sure)
  // Invariant: baseline + acked never exceeds the player's true total, and
  // sure taps are accepted (see takeToken), so the count never shows a tap
  // the server refuses and never runs backwards.
  // A tap can be counted (and pushed live) before its own 202 arrives, so
  // only a count beyond baseline + acked + inflight proves taps from
  // elsewhere; rebasing on less would count an in-flight tap twice.
  var baseline = null;   // applied value the local count starts from
  var acked = 0;         // taps acknowledged since baseline
  var inflight = 0;      // taps sent whose answer has not arrived yet
  var sure = 0;          // of those, taps the server will accept (shown already)
  var lastApplied = null;
  var maybe = [];        // [taps, sure taps] of each POST answered 504: still on their way (see mayStillCount)

  function renderMyTaps() {
    var el = byId('my-taps');
    if (!el) return;
    var applied = parseInt(el.getAttribute('data-applied'), 10);
    if (isNaN(applied)) return;
    if (maybe.length > 0 && baseline !== null && applied >= baseline + acked + inflight) {
      // The server counted every tap on its way: the 504'd ones need no
      // holding (given up, they stay shown in applied).
      while (maybe.length > 0) giveUp(maybe[0]);
    }
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
    setCount(el, Math.max(applied, baseline + acked + sure));
  }

  var errorTimer = 0;
  function showTapError(message) {
    var el = byId('tap-error');
    if (!el) return;
    // The element stays in the page (empty when idle) so that screen
    // readers, which watch role=status regions, announce the change.
    el.textContent = message;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(function () { if (!leaving) el.textContent = ''; }, ERROR_SHOW_MS);
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
    tooFastMessage = message;
  }

  function holdingTaps() { return Date.now() < tooFastUntil; }

  // A 401 means the player is gone from the game (kicked, or left out by
  // an import): the page says so and goes to the join form. A kick also
  // comes over the live stream (#kicked) at once.
  var leaving = false;

  function leave(message) {
    if (leaving) return;
    leaving = true;
    var note = byId('kicked');
    if (note) {
      if (message) note.textContent = message;
      else message = note.textContent;
      note.hidden = false;
    }
    showTapError(message);
    setTimeout(function () { location.assign('/'); }, ERROR_SHOW_MS);
  }

  // tapRefused shows why taps were refused (the server's message), holds
  // taps after a 429, and leaves after a 401.
  function tapRefused(status, json, retryAfter) {
    if (status === 401) {
      leave('You are no longer in this game. Taking you to the join page…');
      return;
    }
    // The server's words are for API users (they name the setting); the
    // player gets these.
    var msg = status === 429 ? 'Too fast! Wait a moment, then try again.' :
      status === 503 ? 'Server busy, try again.' :
      (json && typeof json.error === 'string' && json.error) || 'Tap not counted (' + status + ').';
    if (status === 429) {
      tooFast(retryAfter, msg);
      tokens = Math.min(tokens, 0); // lowering the page's bucket is always safe
    }
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
    formatNumbers(e.target);
    var id = e.target && e.target.id;
    if (id === 'my-taps' || id === 'my-rank') {
      renderMyTaps();
      renderRound(); // the personal result at the bell uses both
    }
    else if (id === 'leaderboard' || id === 'leaderboard-full') markMyRows();
    else if (id === 'tap-ack') tapAnswered(e.target, true);
    else if (id === 'tap-error') tapAnswered(e.target, false);
    else if (id === 'round') renderRound();
    else if (id === 'kicked') leave('');
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

  var pressTimer = 0;
  function pressFeedback() {
    tapButton.classList.remove('is-pressed');
    void tapButton.offsetWidth; // restart the press animation on every tap
    tapButton.classList.add('is-pressed');
    clearTimeout(pressTimer);
    pressTimer = setTimeout(function () { tapButton.classList.remove('is-pressed'); }, 90);
    if (navigator.vibrate) {
      try { navigator.vibrate(8); } catch (err) { /* not allowed here */ }
    }
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
      tap();
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
  var unanswered = {};   // seq -> [taps, sure taps] sent over the socket, no answer yet
  var batched = 0;       // taps waiting for the batch window
  var batchedSure = 0;   // of those, sure ones
  var batchTimer = 0;

  // Which taps may show at once. The server refuses taps over its limit
  // (data-tap-rate per second, bursts of data-tap-burst on the button; rate
  // 0: no limit), a message (or POST) whole. The page keeps a token bucket
  // C with server bucket S >= C + taps on their way: C starts empty,
  // refills at the same rate, is capped at the burst less the taps on their
  // way, and every tap takes one token (C may go below 0). A tap made with a
  // token in hand is sure: sure taps go in messages of their own, which the
  // server then always has the tokens for, whatever order messages arrive
  // in. Other taps are sent too, and shown once acknowledged.
  var tapRate = tapButton ? parseFloat(tapButton.getAttribute('data-tap-rate')) : 0;
  var tapBurst = tapButton ? parseInt(tapButton.getAttribute('data-tap-burst'), 10) : 0;
  var tokens = 0;
  var tokensAt = Date.now();

  // takeToken takes a token for a tap not yet counted in inflight and
  // reports whether there was one.
  function takeToken() {
    if (!(tapRate > 0) || !(tapBurst > 0)) return true;
    var now = Date.now();
    tokens = Math.min(tapBurst - inflight, tokens + (now - tokensAt) / 1000 * tapRate);
    tokensAt = now;
    tokens -= 1;
    return tokens >= 0;
  }

  // nearBell: a tap this close to the end of a timed round may reach the
  // server after the bell and be refused, so it is not shown before its
  // answer.
  var BELL_MARGIN_MS = 500;
  function nearBell() {
    var r = byId('round');
    if (!r || r.getAttribute('data-mode') !== 'timed') return false;
    return serverNow() > num(r, 'data-ends-at') - BELL_MARGIN_MS;
  }

  // answered settles n taps (k of them sure) that got an answer or were lost.
  function answered(n, k, ok) {
    inflight = Math.max(0, inflight - n);
    sure = Math.max(0, sure - k);
    if (ok) acked += n;
    renderMyTaps();
  }

  function socketOpen() {
    return !fellBack && wsOpenedAt > 0 && pageSocket && pageSocket.readyState === 1;
  }

  // tap is one tap: a finger or mouse button going down, or Space/Enter.
  // Counted on pointerdown, once per finger: two thumbs that overlap make
  // two pointerdowns and no click at all.
  function tap() {
    if (leaving || tapButton.disabled) return;
    pressFeedback();
    if (holdingTaps()) {
      showTapError(tooFastMessage);
      return;
    }
    var isSure = takeToken() && !nearBell();
    batched++;
    inflight++;
    if (isSure) {
      batchedSure++;
      sure++;
      renderMyTaps();
    }
    if (!batchTimer) batchTimer = setTimeout(flushTaps, TAP_BATCH_MS);
  }

  if (tapButton) {
    tapButton.addEventListener('pointerdown', function (e) {
      if (e.pointerType === 'mouse' && e.button !== 0) return;
      tap();
    });
    // A click that no pointer made (detail 0: a screen reader's or switch
    // control's activation) is a tap; any other click follows a
    // pointerdown that was counted already.
    tapButton.addEventListener('click', function (e) {
      if (e.detail === 0) tap();
    });
    tapButton.addEventListener('contextmenu', function (e) { e.preventDefault(); }); // long press
  }

  function flushTaps() {
    clearTimeout(batchTimer);
    batchTimer = 0;
    var n = batched, k = batchedSure;
    batched = 0;
    batchedSure = 0;
    if (n === 0) return;
    if (holdingTaps()) { // a 429 came while these waited for the window
      showTapError(tooFastMessage);
      answered(n, k, false);
      return;
    }
    // Sure taps and the others go in separate messages (see takeToken).
    sendTaps(k, true);
    sendTaps(n - k, false);
  }

  function sendTaps(n, allSure) {
    if (n <= 0) return;
    if (!socketOpen()) {
      postTaps(n, allSure);
      return;
    }
    while (n > 0) {
      var count = Math.min(n, MAX_BURST);
      n -= count;
      tapSeq++;
      unanswered[tapSeq] = [count, allSure ? count : 0];
      pageSocket.send(JSON.stringify({ count: count, seq: tapSeq }));
    }
  }

  // postTaps sends taps when there is no open socket.
  function postTaps(n, allSure) {
    var count = Math.min(n, MAX_BURST), kc = allSure ? count : 0;
    fetch('/api/tap', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ count: count })
    }).then(function (r) {
      if (r.status === 504) {
        mayStillCount(count, kc);
        var said = 'No answer in time: these taps may still count.';
        return r.json().then(function (j) { showTapError((j && typeof j.error === 'string' && j.error) || said); },
          function () { showTapError(said); });
      }
      answered(count, kc, r.ok);
      if (r.ok) return;
      var retryAfter = r.headers.get('Retry-After');
      return r.json().then(function (j) { tapRefused(r.status, j, retryAfter); },
        function () { tapRefused(r.status, null, retryAfter); });
    }, function () {
      answered(count, kc, false);
      showTapError('No connection: taps not sent.');
    });
    if (n > count) postTaps(n - count, allSure);
  }

  // A POST answered 504 ("may still count") gets no later answer, unlike a
  // socket's message (tapAnswered): its taps stay on their way (inflight,
  // shown if sure) as a socket's unanswered ones do, until the live count
  // covers every tap on its way (renderMyTaps) or MAYBE_HOLD_MS passed;
  // then they are given up, and the live #my-taps shows them if they
  // counted.
  var MAYBE_HOLD_MS = 15000;

  function mayStillCount(n, k) {
    var entry = [n, k];
    maybe.push(entry);
    setTimeout(function () {
      if (giveUp(entry)) renderMyTaps();
    }, MAYBE_HOLD_MS);
  }

  // giveUp stops holding one of maybe; false when it went already.
  function giveUp(entry) {
    var i = maybe.indexOf(entry);
    if (i < 0) return false;
    maybe.splice(i, 1);
    inflight = Math.max(0, inflight - entry[0]);
    sure = Math.max(0, sure - entry[1]);
    return true;
  }

  // tapAnswered handles a swapped-in #tap-ack or #tap-error.
  function tapAnswered(el, ok) {
    var seq = el.getAttribute('data-seq');
    // [i18-log] 504: no answer in time, the taps may still count; their
    // ack or error follows with the same seq, so they stay unanswered.
    if (!ok && el.getAttribute('data-status') === '504') { showTapError(el.textContent); return; }
    var sent = seq ? unanswered[seq] : undefined;
    if (sent !== undefined) {
      delete unanswered[seq];
      answered(sent[0], sent[1], ok);
    }
    if (!ok) tapRefused(parseInt(el.getAttribute('data-status'), 10), { error: el.textContent }, el.getAttribute('data-retry-after'));
  }

  // The socket closed: taps still waiting for the window go by POST; taps
  // sent without an answer are given up (not resent: they may have counted).
  function socketClosed() {
    var lost = 0, lostSure = 0;
    for (var seq in unanswered) {
      if (Object.prototype.hasOwnProperty.call(unanswered, seq)) {
        lost += unanswered[seq][0];
        lostSure += unanswered[seq][1];
      }
    }
    unanswered = {};
    inflight = Math.max(0, inflight - lost);
    sure = Math.max(0, sure - lostSure);
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
      if (tapButton) keepAwake(now < ends);
      renderMyResult(final ? r : null);
    } else {
      if (tapButton) keepAwake(false);
      renderMyResult(null);
    }
    if (tapButton) tapButton.disabled = !playing;
    if (why) {
      setText(why, reason);
      why.hidden = playing;
    }
  }

  // The personal result at the bell (game page): "Red won — you were #35
  // of 412 with 231 taps", from the final #round and the player's own
  // counted taps and rank (ties share a rank).
  function renderMyResult(r) {
    var el = byId('my-result');
    if (!el) return;
    var rank = byId('my-rank'), mine = byId('my-taps'), text = '';
    if (r && rank && mine) {
      var label = r.getAttribute('data-winner-label');
      var head = label ? label + ' won' : 'It\'s a tie';
      var n = parseInt(rank.getAttribute('data-n'), 10);
      var of = parseInt(rank.getAttribute('data-of'), 10);
      var taps = parseInt(mine.getAttribute('data-applied'), 10) || 0;
      text = n > 0 ? head + ' — you were #' + formatCount(n) + (of > 0 ? ' of ' + formatCount(of) : '') +
        ' with ' + formatCount(taps) + (taps === 1 ? ' tap' : ' taps') : head + ' — you did not tap this round';
    }
    setText(el, text);
    el.hidden = !text;
  }

  // Phones keep the screen on from the countdown to the bell (Screen Wake
  // Lock API where there is one), and let it sleep again after. A lock is
  // lost when the page is hidden; it is asked for again when it shows.
  // body[data-wake-lock] says what the page holds (for tests and debugging).
  var wantAwake = false;
  var wakeLock = null;

  function keepAwake(on) {
    if (on === wantAwake) return;
    wantAwake = on;
    if (on) askWakeLock();
    else if (wakeLock) {
      var l = wakeLock;
      wakeLock = null;
      l.release().catch(function () {});
      body.setAttribute('data-wake-lock', 'released');
    }
  }

  function askWakeLock() {
    if (!navigator.wakeLock) {
      body.setAttribute('data-wake-lock', 'unsupported');
      return;
    }
    if (document.visibilityState !== 'visible' || wakeLock) return;
    navigator.wakeLock.request('screen').then(function (l) {
      if (!wantAwake) {
        l.release().catch(function () {});
        return;
      }
      wakeLock = l;
      body.setAttribute('data-wake-lock', 'held');
      l.addEventListener('release', function () {
        if (wakeLock === l) wakeLock = null;
      });
    }, function () { body.setAttribute('data-wake-lock', 'refused'); });
  }

  document.addEventListener('visibilitychange', function () {
    if (wantAwake && document.visibilityState === 'visible') askWakeLock();
  });

  setInterval(renderRound, ROUND_TICK_MS);
  // A page that never connected says so once the WebSocket had its chance
  // and the SSE fallback its first try.
  if (live) setTimeout(function () { if (!streamUp) streamState(false); }, WS_OPEN_TIMEOUT_MS);

  formatNumbers(body);
  localTimes(body);
  renderRound();
  renderMyTaps();
  markMyRows();
})();
