/*
 * tapwars presenter screen (/screen): the show on top of app.js.
 *   1. --chars on every text screen.css sizes to fit (one line, never
 *      wrapped); the numbers are app.js's (window.tapwars.setCount: the
 *      viewer's locale and the shared num--wN fitting);
 *   2. the lobby before the first tap: players here and the newest names,
 *      read from GET /api/game-state every few seconds while it shows;
 *   3. the podium (top 3) at the bell, from the live leaderboard;
 *   4. a fullscreen button (Fullscreen API);
 *   5. optional sound, off until the host turns it on (browsers allow
 *      audio only after a gesture): beeps in the last seconds of the
 *      countdown, a horn at the bell. Generated with WebAudio: no files.
 * Loaded with `defer` after app.js, only by /screen.
 */
(function () {
  'use strict';

  var screen = document.querySelector('[data-screen]');
  if (!screen) return;
  var body = document.body;
  var byId = function (id) { return document.getElementById(id); };

  /* ---------------------------------------------------------------- 1 ---- */

  // Numbers are app.js's: the server renders each count with data-n and
  // app.js formats it in the viewer's locale after every swap; the numbers
  // this file makes itself (the lobby's count, the podium's taps) go
  // through app.js's setCount too (text, data-n and num--wN class).
  var setCount = window.tapwars.setCount;

  // The texts screen.css fits to their width by their length (the counts
  // fit by their num--wN class: app.css, "numbers that fit").
  var FIT = '.score__team, .round__clock, .round__headline, .round__final, .round__top, .round__next';

  function fit() {
    var els = screen.querySelectorAll(FIT);
    for (var i = 0; i < els.length; i++) {
      // Array.from counts characters (an emoji is one), not UTF-16 units.
      var n = String(Math.max(1, Array.from(els[i].textContent.trim()).length));
      if (els[i].style.getPropertyValue('--chars') !== n) els[i].style.setProperty('--chars', n);
    }
  }

  /* ---------------------------------------------------------------- 2 ---- */

  var LOBBY_POLL_MS = 3000;
  var lobbyTimer = 0;

  function total() {
    var el = byId('total-taps');
    return el ? parseInt(el.textContent.replace(/\D/g, ''), 10) || 0 : 0;
  }

  function roundFinal() {
    var r = byId('round');
    return !!(r && r.getAttribute('data-final') === 'true');
  }

  function renderLobby(state) {
    var count = byId('lobby-count'), what = byId('lobby-what'), list = byId('lobby-names');
    if (!count || !list) return;
    var here = state.gameState ? state.gameState.activeUsers : 0;
    setCount(count, here);
    what.textContent = here === 1 ? ' player here' : ' players here';
    var users = (state.users || []).slice(0, 12);
    var have = Array.prototype.map.call(list.children, function (li) { return li.textContent; }).join('\n');
    if (have === users.map(function (u) { return u.username; }).join('\n')) return;
    // Keep the element of a name already shown: only a newcomer's name
    // makes its entrance (.is-new, dropped when it ends).
    var shown = {};
    for (var k = 0; k < list.children.length; k++) shown[list.children[k].textContent] = list.children[k];
    var items = users.map(function (u) {
      var li = shown[u.username];
      if (!li) {
        li = document.createElement('li');
        li.className = (u.team === 'blue' ? 'team-blue' : u.team === 'red' ? 'team-red' : '') + ' is-new';
        li.textContent = u.username;
        li.addEventListener('animationend', function () { li.classList.remove('is-new'); }, { once: true });
      }
      return li;
    });
    list.replaceChildren.apply(list, items);
    trimLobby();
  }

  // trimLobby hides the names that do not fit the lobby's box whole: a
  // projector shows whole names or none, never half a row.
  function trimLobby() {
    var list = byId('lobby-names');
    if (!list || list.offsetParent === null) return;
    // Layout positions (offsetTop: the list is their offset parent), not
    // the drawn boxes, which a name's entrance animation scales; against
    // the list's room (its max-height), not its height, which shrinks with
    // the names it shows.
    var room = parseFloat(getComputedStyle(list).maxHeight) || Infinity;
    for (var i = 0; i < list.children.length; i++) {
      var li = list.children[i];
      li.hidden = false;
      if (li.offsetTop + li.offsetHeight > room + 0.5) {
        for (var j = i; j < list.children.length; j++) list.children[j].hidden = true;
        return;
      }
    }
  }
  window.addEventListener('resize', trimLobby);

  function pollLobby() {
    clearTimeout(lobbyTimer);
    lobbyTimer = 0;
    var lobby = byId('screen-lobby');
    if (!lobby || lobby.hidden) return;
    fetch('/api/game-state', { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) renderLobby(s); }, function () {})
      .then(function () { if (!lobby.hidden) lobbyTimer = setTimeout(pollLobby, LOBBY_POLL_MS); });
  }

  // The lobby shows until the first tap, and not over a round's result.
  function updateLobby() {
    var lobby = byId('screen-lobby');
    if (!lobby) return;
    var show = total() === 0 && !roundFinal();
    if (lobby.hidden === !show) return;
    lobby.hidden = !show;
    if (show) {
      trimLobby();
      pollLobby();
    }
  }

  /* ---------------------------------------------------------------- 3 ---- */

  function renderPodium() {
    var podium = byId('screen-podium');
    if (!podium) return;
    var rows = roundFinal() ? document.querySelectorAll('#leaderboard li[data-player-id]') : [];
    var list = podium.querySelector('.podium__list');
    var items = [];
    for (var i = 0; i < rows.length && i < 3; i++) {
      var row = rows[i];
      var li = document.createElement('li');
      var team = row.classList.contains('team-blue') ? 'team-blue' : row.classList.contains('team-red') ? 'team-red' : '';
      var place = row.querySelector('.board__rank').textContent.trim();
      li.className = 'podium__place podium__place--' + (i + 1) + (team ? ' ' + team : '');
      var name = document.createElement('span');
      name.className = 'podium__name';
      name.textContent = row.querySelector('.board__name').textContent;
      var taps = document.createElement('span');
      taps.className = 'podium__taps fit';
      var count = document.createElement('span');
      count.className = 'num';
      setCount(count, parseInt(row.querySelector('.board__taps [data-n]').getAttribute('data-n'), 10) || 0);
      taps.append(count);
      var block = document.createElement('span');
      block.className = 'podium__block';
      block.textContent = place;
      block.setAttribute('aria-label', 'place ' + place);
      li.append(name, taps, block);
      items.push(li);
    }
    list.replaceChildren.apply(list, items);
    podium.hidden = items.length === 0;
  }

  /* ---------------------------------------------------------------- 4 ---- */

  var fsButton = byId('screen-fullscreen');
  if (fsButton && document.fullscreenEnabled) {
    fsButton.hidden = false;
    fsButton.addEventListener('click', function () {
      if (document.fullscreenElement) document.exitFullscreen();
      else document.documentElement.requestFullscreen().catch(function () {});
    });
    document.addEventListener('fullscreenchange', function () {
      fsButton.textContent = document.fullscreenElement ? 'Exit fullscreen' : 'Fullscreen';
    });
  }

  /* ---------------------------------------------------------------- 5 ---- */

  var AudioCtx = window.AudioContext || window.webkitAudioContext;
  var soundButton = byId('screen-sound');
  var audio = null;
  var soundOn = false;

  // tone plays one note: freq Hz for secs, through a short attack and a
  // decay so it never clicks.
  function tone(freq, secs, type, volume) {
    if (!soundOn || !audio) return;
    var t = audio.currentTime;
    var osc = audio.createOscillator();
    var gain = audio.createGain();
    osc.type = type || 'sine';
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(volume || 0.3, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + secs);
    osc.connect(gain).connect(audio.destination);
    osc.start(t);
    osc.stop(t + secs + 0.05);
  }

  function horn() {
    // two detuned saws a minor third apart: a stadium horn
    [220, 262, 221.5].forEach(function (f) { tone(f, 1.4, 'sawtooth', 0.12); });
  }

  if (soundButton && AudioCtx) {
    soundButton.hidden = false;
    soundButton.addEventListener('click', function () {
      if (!audio) audio = new AudioCtx();
      soundOn = !soundOn;
      if (soundOn && audio.state === 'suspended') audio.resume();
      soundButton.setAttribute('aria-pressed', soundOn ? 'true' : 'false');
      soundButton.textContent = soundOn ? 'Sound on' : 'Sound off';
      if (soundOn) tone(660, 0.15);
    });
  }

  // The round's moments, from what app.js shows: "3…" "2…" "1…", then
  // "TAP!", then the bell (#round's data-live-status becomes "over").
  var lastClock = '';
  var lastStatus = '';
  function sounds() {
    var r = byId('round');
    if (!r || r.getAttribute('data-mode') !== 'timed') { lastClock = ''; lastStatus = ''; return; }
    var clockEl = r.querySelector('[data-round-clock]');
    var clock = clockEl ? clockEl.textContent : '';
    var status = r.getAttribute('data-live-status') || '';
    if (clock !== lastClock) {
      if (/^[1-5]…$/.test(clock)) tone(880, 0.18);
      else if (clock === 'TAP!' && lastStatus === 'countdown') tone(1320, 0.4);
    }
    if (status === 'over' && lastStatus === 'running') horn();
    lastClock = clock;
    lastStatus = status;
  }

  /* ------------------------------------------------------------ updates --- */

  function refresh() {
    updateLobby();
    renderPodium();
    fit();
  }

  // Live swaps run in the same task as the swap, before paint.
  function afterSwap(e) {
    var t = e.target;
    if (!t || !screen.contains(t)) return;
    if (t.id === 'total-taps' || t.id === 'round') updateLobby();
    if (t.id === 'round' || t.id === 'leaderboard') renderPodium();
    fit();
  }
  body.addEventListener('htmx:oobAfterSwap', afterSwap);
  body.addEventListener('htmx:afterSwap', afterSwap);

  // The host renamed or recoloured the teams: the live tug bar carries
  // another data-teams. A projector reloads (names are in many places,
  // colours in /theme.css); a phone mid-game does not.
  var tugAtLoad = byId('tug-bar');
  var teamsAtLoad = tugAtLoad ? tugAtLoad.getAttribute('data-teams') : null;
  function teamsChanged() {
    var tug = byId('tug-bar');
    var now = tug ? tug.getAttribute('data-teams') : null;
    if (teamsAtLoad && now && now !== teamsAtLoad) {
      teamsAtLoad = null; // once
      location.reload();
    }
  }

  // app.js rewrites the round clock every 200 ms.
  setInterval(function () { fit(); sounds(); teamsChanged(); }, 200);

  refresh();
  trimLobby();
  if (byId('screen-lobby') && !byId('screen-lobby').hidden) pollLobby();

})();
