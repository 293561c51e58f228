// deployer dashboard: fetches /dashboard/api/overview every few seconds and renders
// it with DOM methods only (every string from the API is user input or close to it).
'use strict';

(function () {
  const API = '/dashboard/api/overview';
  const REFRESH_MS = 3000;
  const FETCH_TIMEOUT_MS = 15000;
  const SVGNS = 'http://www.w3.org/2000/svg';
  const FINAL = new Set(['completed', 'failed', 'canceled']);
  // The phases of timings_ms, in order; they add up to its total.
  const PHASES = ['queue', 'project', 'image', 'deps', 'chain', 'container', 'copy', 'compile', 'deploy', 'confirm', 'release'];
  const MIN_SLOTS = 16; // the chart keeps room for this many bars, newest on the right

  const state = {
    data: null,          // the last overview that arrived
    fetchedAt: 0,        // Date.now() when it arrived
    genAt: null,         // its generated_at, in ms
    error: null,         // why the last refresh failed, or null
    failures: 0,
    inflight: false,
    timer: 0,
    expanded: new Set(), // job ids whose detail row is open
    logs: new Map(),     // job id -> {text, source, ended}: the live log of an open job
    logScale: false,
    pendingRender: false,
  };
  try { state.logScale = window.localStorage.getItem('deployer.chart.scale') === 'log'; } catch (e) { /* storage off */ }
  {
    const q = /[?&]scale=(log|linear)\b/.exec(location.search);
    if (q) state.logScale = q[1] === 'log';
  }

  // ---------------------------------------------------------------- safe access

  const arr = (v) => (Array.isArray(v) ? v : []);
  const obj = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const str = (v) => (typeof v === 'string' ? v : (typeof v === 'number' || typeof v === 'boolean' ? String(v) : ''));
  const bool = (v) => (typeof v === 'boolean' ? v : null);
  const sum = (xs) => xs.reduce((a, b) => a + (num(b) || 0), 0);
  const objects = (v) => arr(v).filter((x) => x && typeof x === 'object' && !Array.isArray(x));

  // ts parses an RFC 3339 time (nanoseconds allowed); Go's zero time counts as none.
  function ts(v) {
    if (typeof v !== 'string' || !v) return null;
    const t = Date.parse(v.replace(/(\.\d{3})\d+/, '$1'));
    if (!Number.isFinite(t) || t < 86400000) return null;
    return t;
  }

  function rate(hits, misses) {
    const hit = num(hits) || 0;
    const miss = num(misses) || 0;
    return hit + miss > 0 ? hit / (hit + miss) : null;
  }

  // ---------------------------------------------------------------- formatting

  function fmtInt(v) {
    const n = num(v);
    return n == null ? '—' : Math.round(n).toLocaleString('en-US');
  }

  function fmtPct(r) {
    const n = num(r);
    if (n == null) return '—';
    const p = n * 100;
    if (p === 0 || p === 100 || p >= 99.95) return Math.round(p) + '%';
    return (p < 10 ? p.toFixed(1) : Math.round(p)) + '%';
  }

  function fmtMs(v) {
    const ms = num(v);
    if (ms == null) return '—';
    if (ms < 1000) return Math.round(ms) + ' ms';
    const sec = ms / 1000;
    if (sec < 10) return sec.toFixed(2) + ' s';
    if (sec < 600) return sec.toFixed(1) + ' s';
    return (sec / 60).toFixed(1) + ' min';
  }

  function fmtTick(ms) {
    if (ms === 0) return '0';
    if (ms < 1000) return trimNum(ms) + ' ms';
    if (ms < 120000) return trimNum(ms / 1000) + ' s';
    return trimNum(ms / 60000) + ' min';
  }

  function trimNum(x) {
    return String(Math.round(x * 100) / 100);
  }

  function fmtBytes(v) {
    const b = num(v);
    if (b == null) return '—';
    if (b < 1000) return Math.round(b) + ' B';
    if (b < 1e6) return (b / 1e3).toFixed(1) + ' kB';
    if (b < 1e9) return (b / 1e6).toFixed(1) + ' MB';
    return (b / 1e9).toFixed(2) + ' GB';
  }

  function fmtMB(v) {
    const b = num(v);
    return b == null ? '—' : (b / 1e6).toFixed(1) + ' MB';
  }

  function fmtDur(seconds) {
    const s = num(seconds);
    if (s == null) return '—';
    const x = Math.max(0, Math.floor(s));
    if (x < 60) return x + ' s';
    if (x < 3600) return Math.floor(x / 60) + ' min';
    if (x < 86400) {
      const hrs = Math.floor(x / 3600);
      const min = Math.floor((x % 3600) / 60);
      return min ? hrs + ' h ' + min + ' min' : hrs + ' h';
    }
    const days = Math.floor(x / 86400);
    const hrs = Math.floor((x % 86400) / 3600);
    return hrs ? days + ' d ' + hrs + ' h' : days + ' d';
  }

  function fmtAgo(t) {
    if (t == null) return '—';
    const s = (serverNow() - t) / 1000;
    if (s < 1.5) return 'just now';
    return fmtDur(s) + ' ago';
  }

  function fmtTime(t) {
    if (t == null) return '—';
    const d = new Date(t);
    const p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' +
      p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }

  function fmtClock(t, spanMs) {
    const d = new Date(t);
    const p = (x) => String(x).padStart(2, '0');
    const hm = p(d.getHours()) + ':' + p(d.getMinutes());
    if (spanMs > 20 * 3600 * 1000) return p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + hm;
    return spanMs < 15 * 60 * 1000 ? hm + ':' + p(d.getSeconds()) : hm;
  }

  const plural = (n, one, many) => fmtInt(n) + ' ' + ((num(n) || 0) === 1 ? one : (many || one + 's'));
  const shortId = (v, n) => { const s = str(v); return s.length > n ? s.slice(0, n) : s; };
  const shortAddr = (v) => { const s = str(v); return s.length > 14 ? s.slice(0, 6) + '…' + s.slice(-4) : s; };
  function shortProject(v) {
    const s = str(v);
    const m = /^project:\/\/([0-9a-f]+)$/i.exec(s);
    return m ? m[1].slice(0, 10) : s;
  }

  // serverNow is the server's clock: generated_at plus the time since it arrived, so
  // that ages do not depend on how well this machine's clock agrees with the server's.
  function serverNow() {
    if (state.genAt != null) return state.genAt + (Date.now() - state.fetchedAt);
    return Date.now();
  }

  // ---------------------------------------------------------------- DOM helpers

  function setAttrs(e, attrs, svg) {
    if (!attrs) return;
    for (const k of Object.keys(attrs)) {
      const v = attrs[k];
      if (v == null || v === false) continue;
      if (k === 'class') e.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
      else if (k === 'text') e.textContent = str(v);
      else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else if (k === 'dataset') { for (const dk of Object.keys(v)) if (v[dk] != null) e.dataset[dk] = str(v[dk]); }
      else e.setAttribute(k, v === true ? '' : (svg ? String(v) : str(v)));
    }
  }

  function add(e, children) {
    for (const c of children) {
      if (c == null || c === false || c === '') continue;
      if (Array.isArray(c)) add(e, c);
      else if (c instanceof Node) e.appendChild(c);
      else e.appendChild(document.createTextNode(str(c)));
    }
    return e;
  }

  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs, false);
    return add(e, children);
  }

  function s(tag, attrs, ...children) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs, true);
    return add(e, children);
  }

  const $ = (id) => document.getElementById(id);
  const icon = (name, cls) => h('span', { class: ['material-icons', cls], 'aria-hidden': 'true' }, name);
  const mono = (text, title) => h('span', { class: 'mono', title: title || null }, text);
  const muted = (text) => h('span', { class: 'muted' }, text);
  const dash = () => h('span', { class: 'muted' }, '—');

  // ago is a relative time that the ticker keeps current.
  function ago(t, prefix) {
    if (t == null) return dash();
    return h('span', { class: 'ago', 'data-ts': String(t), 'data-prefix': prefix || null, title: fmtTime(t) },
      (prefix || '') + fmtAgo(t));
  }

  function empty(iconName, text, hint) {
    return h('div', { class: 'empty' }, icon(iconName), h('div', { class: 'empty-text' }, text), hint ? h('div', { class: 'empty-hint' }, hint) : null);
  }

  function table(cls, headers, rows, colgroup) {
    const thead = h('thead', null, h('tr', null, headers.map((x) => {
      const [label, c, title] = Array.isArray(x) ? x : [x];
      return h('th', { class: c || null, title: title || null, scope: 'col' }, label);
    })));
    return h('table', { class: ['tbl', cls] }, colgroup || null, thead, h('tbody', null, rows));
  }

  function healthDot(ok, okText, badText, title) {
    if (ok == null) return h('span', { class: 'health unknown', title: title || null }, h('span', { class: 'dot' }), 'unknown');
    return h('span', { class: ['health', ok ? 'ok' : 'bad'], title: title || null }, h('span', { class: 'dot' }), ok ? okText : badText);
  }

  function meter(ratio, tone) {
    const r = num(ratio);
    const pct = r == null ? 0 : Math.max(0, Math.min(1, r)) * 100;
    return h('div', { class: ['meter', tone, r == null ? 'meter-none' : null], 'aria-hidden': 'true' },
      h('i', { style: 'width:' + pct.toFixed(1) + '%' }));
  }

  function renderInto(id, fn) {
    const box = $(id);
    if (!box) return;
    try {
      const out = fn(box);
      if (out === undefined) return;
      // Swap only what changed: a rebuilt node loses its hover, and with it the
      // tooltip someone is reading.
      const tmp = document.createElement('div');
      tmp.append(...[].concat(out).filter(Boolean));
      if (tmp.innerHTML !== box.innerHTML) box.replaceChildren(...tmp.childNodes);
    } catch (e) {
      console.error('dashboard: rendering #' + id + ' failed', e);
      box.replaceChildren(empty('report_problem', 'could not show this part', str(e && e.message)));
    }
  }

  // ---------------------------------------------------------------- data views

  function jobsOf(d) {
    return objects(d.recent_jobs);
  }

  // warmth says how much of a job was already warm: cold when the image was built,
  // compiled when the image was cached but forge compiled, warm when both hit.
  function warmth(j) {
    const c = j.cache && typeof j.cache === 'object' ? j.cache : null;
    if (!c) return 'unknown';
    if (c.image_hit === false) return 'cold';
    if (c.image_hit === true && c.compile_hit === true) return 'warm';
    if (c.image_hit === true) return 'compiled';
    return 'unknown';
  }

  const WARMTH = {
    cold: { label: 'cold', desc: 'image built' },
    compiled: { label: 'compiled', desc: 'image cached, forge compiled' },
    warm: { label: 'warm', desc: 'image and compilation cached' },
    unknown: { label: 'no cache data', desc: '' },
  };

  function deployQueue(d) {
    const qs = objects(d.queues);
    return qs.find((q) => /:deploy$/.test(str(q.name))) || qs.find((q) => !/:maintenance$/.test(str(q.name))) || null;
  }

  function engineMap(d) {
    // Every engine the overview mentions, with what each part says of it.
    const m = new Map();
    const get = (id) => {
      const k = str(id);
      if (!m.has(k)) m.set(k, { id: k, name: '', workers: [], image: null, containers: null, unanswered: [] });
      return m.get(k);
    };
    for (const w of objects(d.workers)) {
      const e = get(w.engine_id);
      e.workers.push(w);
      if (!e.name && str(w.engine_name)) e.name = str(w.engine_name);
    }
    for (const ic of objects(obj(d.image_cache).engines)) get(ic.engine_id).image = ic;
    for (const ec of objects(obj(d.containers).engines)) get(ec.engine_id).containers = ec;
    for (const u of objects(obj(d.containers).unanswered)) get(u.engine_id).unanswered.push(u);
    return m;
  }

  function poolTotals(d) {
    let idle = 0; let busy = 0; let total = 0; let max = 0; let pools = 0; let enabled = 0;
    let hits = 0; let misses = 0;
    for (const e of objects(obj(d.containers).engines)) {
      const ps = objects(e.pools);
      let ph = 0; let pm = 0;
      for (const p of ps) {
        pools++;
        if (p.enabled !== false) enabled++;
        total += num(p.total) || 0;
        max += num(p.max) || 0;
        ph += num(p.reuse_hits) || 0;
        pm += num(p.reuse_misses) || 0;
        for (const k of objects(p.keys)) { idle += num(k.idle) || 0; busy += num(k.busy) || 0; }
      }
      // The engine's own counters when it has them, else its pools'.
      if (num(e.reuse_hits) != null || num(e.reuse_misses) != null) {
        hits += num(e.reuse_hits) || 0;
        misses += num(e.reuse_misses) || 0;
      } else { hits += ph; misses += pm; }
    }
    return { idle, busy, total, max, pools, enabled, hits, misses };
  }

  // ---------------------------------------------------------------- header, banner

  function renderHeader() {
    const d = state.data;
    const inst = $('instance');
    const ready = $('ready');
    if (d) {
      const name = str(d.instance);
      inst.textContent = name;
      inst.hidden = !name;
      document.title = name ? 'deployer · ' + name : 'deployer';
      const ok = d.ready === true;
      ready.dataset.ready = ok ? 'true' : 'false';
      ready.className = 'pill ' + (ok ? 'pill-ok' : 'pill-bad');
      const reason = str(d.ready_reason);
      ready.querySelector('.pill-text').textContent = ok ? 'ready' : 'unavailable' + (reason ? ': ' + reason : '');
      ready.title = ok ? 'a worker with a healthy Docker engine reported lately' : (reason || 'not ready');
    }
    const up = $('updated');
    up.dataset.generatedAt = d ? str(d.generated_at) : '';
    tick();
  }

  function renderBanner() {
    const b = $('banner');
    if (!state.error) { b.hidden = true; return; }
    let text = state.error;
    if (state.data) text += ' · showing data from ' + fmtDur((Date.now() - state.fetchedAt) / 1000) + ' ago';
    if (state.failures > 1) text += ' · ' + state.failures + ' attempts, retrying every ' + REFRESH_MS / 1000 + ' s';
    $('banner-text').textContent = text;
    b.hidden = false;
  }

  // tick keeps the relative times current between refreshes.
  function tick() {
    const up = $('updated');
    if (state.data) {
      const age = (Date.now() - state.fetchedAt) / 1000;
      up.textContent = 'updated ' + (age < 1.5 ? 'just now' : fmtDur(age) + ' ago');
      up.title = 'data generated at ' + fmtTime(state.genAt) + ' (server time)';
      up.classList.toggle('stale', age > 10);
    } else if (state.error) {
      up.textContent = 'no data yet';
    }
    for (const e of document.querySelectorAll('[data-since]')) {
      const t = Number(e.getAttribute('data-since'));
      if (Number.isFinite(t)) e.textContent = fmtMs(Math.max(0, serverNow() - t));
    }
    for (const e of document.querySelectorAll('.ago[data-ts]')) {
      const t = Number(e.getAttribute('data-ts'));
      if (Number.isFinite(t)) e.textContent = (e.getAttribute('data-prefix') || '') + fmtAgo(t);
    }
    if (state.error && state.data) renderBanner();
  }

  // ---------------------------------------------------------------- summary cards

  function card(opts) {
    return h('div', { class: ['card', opts.tone ? 'card-' + opts.tone : null], title: opts.title || null },
      h('div', { class: 'card-head' }, icon(opts.icon), h('span', null, opts.label)),
      h('div', { class: 'card-main' },
        h('span', { class: 'big' }, opts.big),
        opts.unit ? h('span', { class: 'unit' }, opts.unit) : null),
      opts.meter !== undefined ? meter(opts.meter, opts.meterTone) : null,
      h('dl', { class: 'card-stats' }, (opts.stats || []).map(([k, v, c]) =>
        h('div', { class: c || null }, h('dt', null, k), h('dd', null, v)))),
      opts.foot ? h('div', { class: 'card-foot' }, opts.foot) : null);
  }

  function renderCards(d) {
    renderInto('cards', () => {
      const cards = [];

      // Deployments: the totals by network type, else what the recent list shows.
      const byType = obj(obj(d.containers).deployments_by_network_type);
      const types = Object.keys(byType).sort();
      const tot = { completed: 0, failed: 0, canceled: 0 };
      for (const t of types) {
        const c = obj(byType[t]);
        for (const k of Object.keys(tot)) tot[k] += num(c[k]) || 0;
      }
      let fromRecent = false;
      if (!types.length) {
        for (const j of jobsOf(d)) if (j.status in tot) { tot[j.status]++; fromRecent = true; }
      }
      const running = jobsOf(d).filter((j) => j.status === 'running').length;
      const all = tot.completed + tot.failed + tot.canceled;
      cards.push(card({
        icon: 'rocket_launch', label: 'Deployments',
        big: fmtInt(all), unit: fromRecent ? 'finished (recent)' : 'finished',
        meter: all ? tot.completed / all : null, meterTone: tot.failed ? 'mixed' : 'ok',
        stats: [['completed', fmtInt(tot.completed), 'ok'], ['failed', fmtInt(tot.failed), tot.failed ? 'bad' : null],
          ['canceled', fmtInt(tot.canceled)], ['running', fmtInt(running), running ? 'run' : null]],
        foot: types.length ? h('span', { class: 'chips' }, types.map((t) => {
          const c = obj(byType[t]);
          return h('span', { class: 'chip', title: t + ': ' + Object.keys(c).map((k) => k + ' ' + fmtInt(c[k])).join(', ') },
            h('b', null, t), ' ', h('span', { class: 'ok-t' }, fmtInt(num(c.completed) || 0)),
            (num(c.failed) || 0) ? [' · ', h('span', { class: 'bad-t' }, fmtInt(c.failed) + ' failed')] : null,
            (num(c.canceled) || 0) ? [' · ', fmtInt(c.canceled) + ' canceled'] : null);
        })) : muted(all ? 'no network breakdown' : 'no deployments yet'),
      }));

      // The deployment queue.
      const q = deployQueue(d);
      const mq = objects(d.queues).find((x) => /:maintenance$/.test(str(x.name)));
      if (q) {
        const waiting = (num(q.pending) || 0) + (num(q.scheduled) || 0) + (num(q.retry) || 0);
        cards.push(card({
          icon: 'inbox', label: 'Deploy queue',
          title: str(q.name) + (mq ? '\n' + str(mq.name) + ': ' + fmtInt(mq.pending) + ' pending, ' + fmtInt(mq.active) + ' running, ' + fmtInt(mq.failed_today) + ' failed today' : ''),
          big: fmtInt(q.pending), unit: 'pending', tone: waiting > 10 ? 'warn' : null,
          stats: [['running', fmtInt(q.active), (num(q.active) || 0) ? 'run' : null], ['retry', fmtInt(q.retry), (num(q.retry) || 0) ? 'warn' : null],
            ['scheduled', fmtInt(q.scheduled)], ['archived', fmtInt(q.archived), (num(q.archived) || 0) ? 'bad' : null]],
          foot: h('span', null, 'today ', h('b', null, fmtInt(q.processed_today)), ' processed · ',
            h('b', { class: (num(q.failed_today) || 0) ? 'bad-t' : null }, fmtInt(q.failed_today)), ' failed'),
        }));
      } else {
        cards.push(card({ icon: 'inbox', label: 'Deploy queue', big: '—', unit: 'no queue data', stats: [] }));
      }

      // Workers and engines.
      const ws = objects(d.workers);
      const healthy = ws.filter((w) => w.healthy === true).length;
      const engines = new Set(ws.map((w) => str(w.engine_id)).filter(Boolean));
      const unanswered = objects(obj(d.containers).unanswered);
      const slots = sum(ws.map((w) => w.concurrency));
      const busy = sum(ws.map((w) => w.active));
      cards.push(card({
        icon: 'dns', label: 'Workers',
        big: fmtInt(ws.length), unit: 'live', tone: !ws.length || healthy < ws.length ? 'bad' : null,
        meter: slots ? busy / slots : null, meterTone: 'run',
        stats: [['healthy', fmtInt(healthy) + ' / ' + fmtInt(ws.length), healthy < ws.length ? 'bad' : 'ok'], ['engines', fmtInt(engines.size)],
          ['busy', fmtInt(busy) + ' / ' + fmtInt(slots), busy ? 'run' : null], ['unanswered', fmtInt(unanswered.length), unanswered.length ? 'bad' : null]],
        foot: unanswered.length ? h('span', { class: 'bad-t' }, icon('warning', 'inline'), ' ' + unanswered.length + ' engine' + (unanswered.length > 1 ? 's' : '') + ' did not answer')
          : (ws.length ? muted('all engines answered') : h('span', { class: 'bad-t' }, 'no live worker')),
      }));

      // Image cache.
      const ic = obj(d.image_cache);
      const ies = objects(ic.engines);
      const ih = sum(ies.map((e) => e.hits));
      const im = sum(ies.map((e) => e.misses));
      const ib = sum(ies.map((e) => e.builds));
      const icOff = ic.cache_enabled === false;
      const icCount = num(ic.cached_images) != null ? ic.cached_images : sum(ies.map((e) => arr(e.images).length));
      cards.push(card({
        icon: 'layers', label: 'Image cache', tone: icOff ? 'off' : null,
        big: icOff ? 'off' : fmtPct(rate(ih, im)), unit: icOff ? 'disabled' : 'hit rate',
        meter: icOff ? null : rate(ih, im), meterTone: 'ok',
        stats: [['images', fmtInt(icCount)], ['builds', fmtInt(ib)], ['hits', fmtInt(ih)], ['misses', fmtInt(im)]],
        foot: num(ic.max_age_seconds) ? muted('images kept ' + fmtDur(ic.max_age_seconds)) : null,
      }));

      // Compile cache.
      const cc = obj(d.compile_cache);
      const ccOff = cc.cache_enabled === false;
      const cr = num(cc.hit_rate) != null && ((num(cc.hits) || 0) + (num(cc.misses) || 0)) > 0 ? cc.hit_rate : rate(cc.hits, cc.misses);
      cards.push(card({
        icon: 'memory', label: 'Compile cache', tone: ccOff ? 'off' : null,
        big: ccOff ? 'off' : fmtPct(cr), unit: ccOff ? 'disabled' : 'hit rate',
        meter: ccOff ? null : cr, meterTone: 'ok',
        stats: [['foundry', fmtInt(obj(cc.by_framework).foundry)], ['hardhat', fmtInt(obj(cc.by_framework).hardhat)], ['size', fmtBytes(cc.size_bytes)], ['hits', fmtInt(cc.hits)], ['misses', fmtInt(cc.misses)]],
        foot: num(cc.cache_ttl_seconds) ? muted('entries kept ' + fmtDur(cc.cache_ttl_seconds) + ' after use') : null,
      }));

      // Warm pool.
      const p = poolTotals(d);
      const pr = rate(p.hits, p.misses);
      const poolOff = p.pools > 0 && p.enabled === 0;
      cards.push(card({
        icon: 'pool', label: 'Warm pool', tone: poolOff ? 'off' : null,
        big: poolOff ? 'off' : fmtInt(p.idle), unit: poolOff ? 'disabled' : 'idle',
        meter: poolOff ? null : pr, meterTone: 'ok',
        stats: [['busy', fmtInt(p.busy), p.busy ? 'run' : null], ['total', fmtInt(p.total) + ' / ' + fmtInt(p.max)],
          ['reused', fmtInt(p.hits)], ['new', fmtInt(p.misses)]],
        foot: poolOff ? muted('reuse disabled on every worker') : muted(pr == null ? 'no job has asked for a container yet' : fmtPct(pr) + ' of jobs got a warm container'),
      }));

      return cards;
    });
  }

  // ---------------------------------------------------------------- chart

  function niceStep(x) {
    if (!(x > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(x)));
    const f = x / p;
    const n = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    return n * p;
  }

  function median(xs) {
    if (!xs.length) return null;
    const v = xs.slice().sort((a, b) => a - b);
    const m = v.length >> 1;
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  }

  function jobTooltip(j) {
    const t = obj(j.timings_ms);
    const c = j.cache && typeof j.cache === 'object' ? j.cache : null;
    const w = warmth(j);
    const lines = [
      str(j.job_id) + ' · ' + (str(j.status) || 'unknown') + ' · ' + WARMTH[w].label,
      'total ' + fmtMs(t.total),
      PHASES.map((p) => p + ' ' + fmtMs(t[p])).join(' · '),
      'forge ' + fmtMs(obj(t.within).forge) + ' (part of compile and deploy)',
    ];
    if (c) {
      lines.push('image ' + (c.image_hit ? 'cached' : 'built') + ' · container ' + (c.container_reused ? 'reused' : 'new') +
        ' · compile ' + (c.compile_hit ? 'cached' : 'by forge'));
    }
    const target = str(j.target);
    if (target || str(j.network)) lines.push([target, str(j.network) ? 'on ' + str(j.network) : '', str(j.client) ? 'for ' + str(j.client) : ''].filter(Boolean).join(' '));
    if (j.status === 'failed' && str(j.error)) lines.push('error: ' + str(j.error).slice(0, 300));
    return lines.join('\n');
  }

  function renderChart(d) {
    const all = jobsOf(d);
    const jobs = all.filter((j) => FINAL.has(j.status) && j.timings_ms && typeof j.timings_ms === 'object' && num(j.timings_ms.total) != null).reverse();

    // Legend, with how many jobs of each kind and their median.
    renderInto('legend', () => {
      const kinds = ['cold', 'compiled', 'warm'];
      if (jobs.some((j) => warmth(j) === 'unknown')) kinds.push('unknown');
      const items = kinds.map((k) => {
        const done = jobs.filter((j) => warmth(j) === k && j.status === 'completed').map((j) => j.timings_ms.total);
        const med = median(done);
        return h('span', { class: 'lg', title: WARMTH[k].desc ? k + ': ' + WARMTH[k].desc : null },
          h('span', { class: 'sw sw-' + k }), h('span', { class: 'lg-name' }, WARMTH[k].label),
          h('span', { class: 'lg-desc' }, WARMTH[k].desc),
          done.length ? h('span', { class: 'lg-stat', title: done.length + ' completed, median total ' + fmtMs(med) }, done.length + ' · median ' + fmtMs(med)) : null);
      });
      const nFailed = jobs.filter((j) => j.status === 'failed').length;
      const nCanceled = jobs.filter((j) => j.status === 'canceled').length;
      items.push(h('span', { class: 'lg', title: 'failed: hatched, red outline' }, h('span', { class: 'sw sw-failed' }), h('span', { class: 'lg-name' }, 'failed'),
        nFailed ? h('span', { class: 'lg-stat' }, String(nFailed)) : null));
      if (nCanceled) {
        items.push(h('span', { class: 'lg', title: 'canceled: hatched, faded' }, h('span', { class: 'sw sw-canceled' }), h('span', { class: 'lg-name' }, 'canceled'),
          h('span', { class: 'lg-stat' }, String(nCanceled))));
      }
      return items;
    });
    for (const b of document.querySelectorAll('#scale button')) {
      b.classList.toggle('on', (b.dataset.scale === 'log') === state.logScale);
      b.setAttribute('aria-pressed', (b.dataset.scale === 'log') === state.logScale ? 'true' : 'false');
    }
    $('chart-sub').textContent = jobs.length
      ? 'total time of the last ' + jobs.length + ' finished deployment' + (jobs.length > 1 ? 's' : '') + ', oldest on the left · hover a bar for its breakdown, click it to open the job'
      : 'finished deployments, oldest on the left';

    renderInto('chart', (box) => {
      const W = Math.max(480, Math.round(box.clientWidth || 960));
      const H = 250;
      const m = { l: 58, r: 14, t: 24, b: 30 };
      const pw = W - m.l - m.r;
      const ph = H - m.t - m.b;
      const svg = s('svg', { class: 'chart-svg', viewBox: '0 0 ' + W + ' ' + H, width: '100%', preserveAspectRatio: 'xMidYMid meet', role: 'img',
        'aria-label': 'total deployment time of the last ' + jobs.length + ' finished deployments' });
      svg.appendChild(s('defs', null,
        s('pattern', { id: 'hatch', width: 5, height: 5, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
          s('line', { x1: 0, y1: 0, x2: 0, y2: 5, class: 'hatch-line' }))));

      const base = m.t + ph;
      if (!jobs.length) {
        svg.appendChild(s('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: base, y2: base }));
        svg.appendChild(s('text', { class: 'chart-empty', x: m.l + pw / 2, y: m.t + ph / 2, 'text-anchor': 'middle' },
          all.length ? 'no finished deployment with timings yet' : 'no deployments yet'));
        svg.appendChild(s('text', { class: 'chart-empty-hint', x: m.l + pw / 2, y: m.t + ph / 2 + 22, 'text-anchor': 'middle' },
          'each finished deployment adds a bar here, colored by how warm it was'));
        return svg;
      }

      const vals = jobs.map((j) => Math.max(0, j.timings_ms.total));
      const maxV = Math.max(1, ...vals);
      let y; let ticks; let clipAt = null;
      if (state.logScale) {
        const minV = Math.max(1, Math.min(...vals.filter((v) => v > 0).concat([maxV])));
        const lo = Math.pow(10, Math.floor(Math.log10(minV)));
        let hi = Math.pow(10, Math.ceil(Math.log10(maxV)));
        if (hi <= lo) hi = lo * 10;
        const span = Math.log10(hi) - Math.log10(lo);
        y = (v) => base - (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / span * ph;
        ticks = [];
        const mults = span <= 2 ? [1, 2, 5] : [1];
        for (let k = Math.log10(lo); k <= Math.log10(hi) + 1e-9; k++) {
          for (const mm of mults) { const v = mm * Math.pow(10, k); if (v >= lo - 1e-9 && v <= hi + 1e-9) ticks.push(v); }
        }
      } else {
        // A rare bar far above the rest (a stuck job, a first build among warm ones)
        // is clipped, so that the others keep a readable height.
        // Canceled jobs do not set the scale: how long one ran says little about deploying.
        const scaled = jobs.filter((j) => j.status !== 'canceled').map((j) => Math.max(0, j.timings_ms.total));
        const sorted = (scaled.length ? scaled : vals).slice().sort((p, q) => q - p);
        let cap = Math.max(1, sorted[0]);
        if (sorted.length >= 8) {
          for (let k = 1; k <= Math.max(1, Math.floor(sorted.length * 0.1)); k++) {
            if (sorted[k] > 0 && sorted[k - 1] > 3 * sorted[k]) { cap = sorted[k]; break; }
          }
        }
        const step = niceStep(cap / 4);
        const top = Math.ceil(cap * (cap < sorted[0] ? 1.1 : 1) / step - 1e-9) * step;
        if (top < maxV) clipAt = top;
        y = (v) => base - (Math.min(v, top) / top) * ph;
        ticks = [];
        for (let v = 0; v <= top + 1e-9; v += step) ticks.push(Math.round(v * 1000) / 1000);
      }

      const grid = s('g', { class: 'grid' });
      for (const v of ticks) {
        const yy = Math.round(y(v)) + 0.5;
        grid.appendChild(s('line', { class: v === 0 || yy > base - 1 ? 'axis' : 'gridline', x1: m.l, x2: W - m.r, y1: yy, y2: yy }));
        grid.appendChild(s('text', { class: 'tick', x: m.l - 8, y: yy, 'text-anchor': 'end', 'dominant-baseline': 'middle' }, fmtTick(v)));
      }
      if (state.logScale) grid.appendChild(s('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: base + 0.5, y2: base + 0.5 }));
      svg.appendChild(grid);

      const n = jobs.length;
      const slots = Math.max(n, MIN_SLOTS);
      const slotW = pw / slots;
      const barW = Math.max(2, Math.min(slotW * 0.72, 34));
      const bars = s('g', { class: 'bars' });
      const labels = s('g', { class: 'xlabels' });
      jobs.forEach((j, i) => {
        const slotX = m.l + (slots - n + i) * slotW;
        const x = slotX + (slotW - barW) / 2;
        const v = vals[i];
        const top = Math.min(y(v), base - 2);
        const id = str(j.job_id);
        const tip = jobTooltip(j);
        const g = s('g', { class: 'slot', 'data-job-id': id });
        g.appendChild(s('rect', { class: 'hit', x: slotX, y: m.t, width: slotW, height: ph }, s('title', null, tip)));
        const cls = ['bar', warmth(j), j.status === 'failed' ? 'failed' : null, j.status === 'canceled' ? 'canceled' : null,
          j.cache && j.cache.container_reused === true ? 'reused' : null].filter(Boolean).join(' ');
        g.appendChild(s('rect', { class: cls, 'data-job-id': id, 'data-status': str(j.status), x: x.toFixed(2), y: top.toFixed(2), width: barW.toFixed(2), height: (base - top).toFixed(2), rx: Math.min(2, barW / 4) },
          s('title', null, tip)));
        if (j.status === 'failed' || j.status === 'canceled') {
          g.appendChild(s('rect', { class: 'hatch', x: x.toFixed(2), y: top.toFixed(2), width: barW.toFixed(2), height: (base - top).toFixed(2), fill: 'url(#hatch)' }));
        }
        if (clipAt != null && v > clipAt) {
          // The break: a gap across the bar near its top, and its real value above.
          const by = m.t + 9;
          g.appendChild(s('path', { class: 'break', d: 'M' + (x - 2).toFixed(1) + ' ' + (by + 3) + ' L' + (x + barW + 2).toFixed(1) + ' ' + (by - 3) }));
          g.appendChild(s('text', { class: 'clip-label', x: (x + barW / 2).toFixed(1), y: m.t - 5, 'text-anchor': 'middle' }, fmtMs(v)));
        }
        g.addEventListener('click', () => openJob(id));
        bars.appendChild(g);
      });
      // A few relative times under the bars, newest first, never overlapping.
      // Clock times (this browser's zone) under a few bars, newest first, never
      // overlapping; they do not move between refreshes.
      const when = jobs.map((j) => ts(j.finished_at) || ts(j.started_at) || ts(j.created_at));
      const known = when.filter((t) => t != null);
      const spanMs = known.length ? Math.max(...known) - Math.min(...known) : 0;
      let lastX = Infinity;
      let lastText = '';
      for (let i = n - 1; i >= 0; i--) {
        const cx = m.l + (slots - n + i + 0.5) * slotW;
        if (lastX - cx < 130 && i !== n - 1) continue;
        const t = when[i];
        if (t == null) continue;
        const text = fmtClock(t, spanMs);
        if (text === lastText) continue;
        lastText = text;
        const anchor = cx > W - m.r - 40 ? 'end' : (cx < m.l + 40 ? 'start' : 'middle');
        const lx = anchor === 'end' ? Math.min(cx + barW / 2, W - m.r) : cx;
        labels.appendChild(s('text', { class: 'xlabel', x: lx.toFixed(1), y: base + 18, 'text-anchor': anchor }, text));
        lastX = cx;
      }
      svg.appendChild(bars);
      svg.appendChild(labels);
      if (clipAt != null) {
        const k = vals.filter((v) => v > clipAt).length;
        $('chart-sub').textContent += ' · ' + k + ' bar' + (k > 1 ? 's' : '') + ' clipped above ' + fmtTick(clipAt) + ' (log scale shows all to scale)';
      }
      return svg;
    });
  }

  // ---------------------------------------------------------------- jobs table

  function statusPill(st, step) {
    const s0 = str(st) || 'unknown';
    return h('span', { class: 'status status-' + s0.replace(/[^a-z]/g, ''), title: step ? s0 + ': ' + step : s0 }, h('span', { class: 'dot' }), s0);
  }

  function cacheBadges(c, pending) {
    if (pending) {
      // A job that has not finished reports no cache use yet (its flags read false).
      return h('span', { class: 'cbs', title: 'cache use is known when the job finishes' },
        ['img', 'ctr', 'cmp'].map((l) => h('span', { class: 'cb na' }, l)));
    }
    if (!c || typeof c !== 'object') return dash();
    const b = (label, v, hit, miss) => h('span', { class: ['cb', v === true ? 'hit' : v === false ? 'miss' : 'na'], title: v === true ? hit : v === false ? miss : label + ': unknown' }, label);
    return h('span', { class: 'cbs' },
      b('img', bool(c.image_hit), 'image: cache hit', 'image: built'),
      b('ctr', bool(c.container_reused), 'container: reused from the warm pool', 'container: new'),
      b('cmp', bool(c.compile_hit), 'compile: artifacts from the compile cache', 'compile: forge compiled'));
  }

  function contractsCell(j) {
    const cs = objects(obj(j.result).contracts);
    if (!cs.length) return dash();
    const title = cs.map((c) => str(c.name) + ' ' + str(c.address)).join('\n');
    return h('span', { class: 'contracts', title },
      h('span', { class: 'cname' }, str(c0name(cs[0]))), ' ',
      h('span', { class: 'mono addr' }, shortAddr(cs[0].address)),
      cs.length > 1 ? h('span', { class: 'more' }, '+' + (cs.length - 1)) : null);
  }
  const c0name = (c) => str(c.name) || 'contract';

  function phaseBar(t) {
    const vals = PHASES.map((p) => Math.max(0, num(t[p]) || 0));
    const total = sum(vals);
    if (!total) return null;
    return h('div', { class: 'phases' },
      h('div', { class: 'phase-bar' }, PHASES.map((p, i) => vals[i] ? h('span', { class: 'ph ph-' + p, style: 'width:' + (vals[i] / total * 100).toFixed(2) + '%', title: p + ' ' + fmtMs(vals[i]) }) : null)),
      h('div', { class: 'phase-legend' }, PHASES.map((p, i) => vals[i] ? h('span', { class: 'pl' }, h('span', { class: 'sw ph-' + p }), p + ' ', h('b', null, fmtMs(vals[i]))) : null),
        h('span', { class: 'pl' }, 'forge ', h('b', null, fmtMs(obj(t.within).forge))), h('span', { class: 'pl' }, 'total ', h('b', null, fmtMs(t.total)))));
  }

  function kv(label, value) {
    return h('div', { class: 'kv' }, h('dt', null, label), h('dd', null, value == null || value === '' ? dash() : value));
  }

  function jobDetail(j, cols) {
    const t = j.timings_ms && typeof j.timings_ms === 'object' ? j.timings_ms : null;
    const r = j.result && typeof j.result === 'object' ? j.result : null;
    const cs = objects(r && r.contracts);
    const created = ts(j.created_at); const started = ts(j.started_at); const finished = ts(j.finished_at);
    const left = h('dl', { class: 'kvs' },
      kv('job', mono(str(j.job_id))),
      kv('project', str(j.project) ? mono(str(j.project)) : null),
      kv('target', str(j.target) ? mono(str(j.target)) : null),
      kv('framework', str(j.framework)),
      kv('client', str(j.client) || null),
      kv('network', [str(j.network), r && num(r.chain_id) != null ? muted(' chain ' + r.chain_id) : null]),
      kv('sender', r && str(r.sender) ? mono(str(r.sender)) : null),
      kv('worker', str(j.worker) ? mono(str(j.worker)) : null),
      kv('container', str(j.container_id) ? mono(shortId(j.container_id, 12), str(j.container_id)) : null),
      kv('attempts', num(j.attempts) != null ? String(j.attempts) : null),
      kv('created', created != null ? fmtTime(created) : null),
      kv('started', started != null ? fmtTime(started) : null),
      kv('finished', finished != null ? fmtTime(finished) : null),
      j.cancel_requested ? kv('cancel', 'requested') : null);
    const right = h('div', { class: 'detail-right' },
      (t && FINAL.has(str(j.status)) && phaseBar(t)) || h('div', { class: 'muted' }, FINAL.has(str(j.status)) ? 'no timings recorded' : 'timings are recorded when the job finishes' + (str(j.step) ? ' · now: ' + str(j.step) : '')),
      str(j.error) ? h('pre', { class: 'err-full' }, str(j.error)) : null,
      cs.length ? table('tbl-mini', ['contract', 'address', 'transaction'], cs.map((c) => h('tr', null,
        h('td', null, str(c.name)), h('td', null, mono(str(c.address))), h('td', null, mono(str(c.tx_hash)))))) : null,
      r && str(r.rpc_url) ? h('div', { class: 'muted small' }, 'RPC ', mono(str(r.rpc_url))) : null,
      liveLog(str(j.job_id)));
    return h('tr', { class: 'detail', 'data-detail-for': str(j.job_id) }, h('td', { colspan: cols }, h('div', { class: 'detail-grid' }, left, right)));
  }

  // ---------------------------------------------------------------- live log

  // LOG_MAX bounds the output a page keeps per job (the service keeps 1 MiB).
  const LOG_MAX = 256 * 1024;

  // followJob opens the job's event stream (GET /deploy/<id>/events): its output as
  // it comes, and, for a finished job, all of it; the stream ends with the job. The
  // browser reconnects by itself, sending the last event's id.
  function followJob(id) {
    if (state.logs.has(id) || typeof EventSource !== 'function') return;
    const log = { text: '', source: null, ended: false };
    state.logs.set(id, log);
    const es = new EventSource('/deploy/' + encodeURIComponent(id) + '/events');
    log.source = es;
    es.addEventListener('log', (ev) => {
      try { log.text += str(obj(JSON.parse(ev.data)).text); } catch (e) { return; }
      if (log.text.length > LOG_MAX) log.text = '…' + log.text.slice(log.text.length - LOG_MAX);
      paintLog(id);
    });
    es.addEventListener('end', () => {
      log.ended = true;
      es.close();
      paintLog(id);
      refreshSoon();
    });
    es.addEventListener('error', () => {
      // A stream the server closed after the end, or one that will not open: the
      // browser would retry for ever.
      if (log.ended || es.readyState === EventSource.CLOSED) { es.close(); paintLog(id); }
    });
  }

  function unfollowJob(id) {
    const log = state.logs.get(id);
    if (log && log.source) log.source.close();
    state.logs.delete(id);
  }

  function liveLog(id) {
    followJob(id);
    const log = state.logs.get(id);
    if (!log) return null;
    const pre = h('pre', { class: 'live-log', 'data-log-for': id });
    fillLog(pre, log);
    return h('div', { class: 'live-log-box' }, h('div', { class: 'muted small' }, log.ended ? 'output' : 'output (live)'), pre);
  }

  function fillLog(pre, log) {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = log.text || (log.ended ? 'no output' : 'waiting for output…');
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  function paintLog(id) {
    const log = state.logs.get(id);
    const pre = document.querySelector('pre[data-log-for="' + cssEscape(id) + '"]');
    if (log && pre) fillLog(pre, log);
  }

  // refreshSoon fetches the overview now rather than at its next tick: a job ended.
  function refreshSoon() {
    if (!state.inflight) refresh();
  }

  // The URL names the job opened last (#job=<id>), so that it can be shared.
  function setHash(id) {
    try {
      const url = location.pathname + location.search + (id ? '#job=' + encodeURIComponent(id) : '');
      history.replaceState(null, '', url);
    } catch (e) { /* not allowed here */ }
  }

  function toggleJob(id) {
    if (state.expanded.has(id)) {
      state.expanded.delete(id);
      unfollowJob(id);
      setHash(state.expanded.size ? [...state.expanded].pop() : '');
    } else {
      state.expanded.add(id);
      setHash(id);
    }
    if (state.data) renderJobs(state.data);
  }

  function openJob(id) {
    state.expanded.add(id);
    setHash(id);
    if (state.data) renderJobs(state.data);
    const row = document.querySelector('tr[data-job-id="' + cssEscape(id) + '"]');
    if (row) {
      row.scrollIntoView({ block: 'center', behavior: 'smooth' });
      row.classList.add('flash');
      setTimeout(() => row.classList.remove('flash'), 1600);
    }
  }

  function safeDecode(v) {
    try { return decodeURIComponent(v); } catch (e) { return v; }
  }

  function cssEscape(v) {
    return window.CSS && CSS.escape ? CSS.escape(v) : String(v).replace(/["\\]/g, '\\$&');
  }

  function renderJobs(d) {
    const jobs = jobsOf(d);
    const counts = {};
    for (const j of jobs) counts[str(j.status) || 'unknown'] = (counts[str(j.status) || 'unknown'] || 0) + 1;
    $('jobs-sub').textContent = jobs.length
      ? 'newest first · ' + jobs.length + ' shown' + ['running', 'queued', 'failed', 'canceled'].filter((k) => counts[k]).map((k) => ' · ' + counts[k] + ' ' + k).join('') + ' · click a row for details'
      : 'newest first';
    renderInto('jobs', (box) => {
      if (!jobs.length) return empty('rocket_launch', 'no deployments yet', 'Deployments appear here as soon as they are submitted (deployer submit DIR).');
      const headers = [['job'], ['status'], ['network'], ['target / project'], ['total', 'num'], ['cache', null, 'image cached · container reused · compilation cached'],
        ['contracts'], ['age', null, 'since it finished, or was submitted'], ['error']];
      const colgroup = h('colgroup', null, ['c-job', 'c-status', 'c-net', 'c-target', 'c-total', 'c-cache', 'c-contracts', 'c-age', 'c-error'].map((c) => h('col', { class: c })));
      const rows = [];
      for (const j of jobs) {
        const id = str(j.job_id);
        const st = str(j.status);
        const t = j.timings_ms && typeof j.timings_ms === 'object' ? j.timings_ms : null;
        const open = state.expanded.has(id);
        const started = ts(j.started_at);
        let total;
        if (t && num(t.total) != null && FINAL.has(st)) total = h('span', { class: 'dur', title: jobTooltip(j) }, h('i', { class: 'wm wm-' + warmth(j) }), fmtMs(t.total));
        else if (st === 'running' && started != null) total = h('span', { class: 'dur live', title: 'running since ' + fmtTime(started), 'data-since': String(started) }, fmtMs(serverNow() - started));
        else if (t && num(t.total) != null) total = h('span', { class: 'dur' }, fmtMs(t.total));
        else total = dash();
        const target = str(j.target);
        const project = str(j.project);
        const step = str(j.step);
        const err = str(j.error);
        const r = obj(j.result);
        const when = ts(j.finished_at) || ts(j.started_at) || ts(j.created_at);
        const tr = h('tr', {
          'data-job-id': id, 'data-status': st, class: ['job', open ? 'open' : null, 'w-' + warmth(j)], tabindex: '0', 'aria-expanded': open ? 'true' : 'false',
          onclick: (ev) => { if (!window.getSelection().toString()) toggleJob(id); ev.stopPropagation(); },
          onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); toggleJob(id); } },
        },
        h('td', { class: 'c-job' }, icon(open ? 'expand_more' : 'chevron_right', 'chev'), mono(shortId(id, 8), id)),
        h('td', { class: 'c-status' }, statusPill(st, step), step && !FINAL.has(st) ? h('span', { class: 'step', title: step }, step) : null),
        h('td', { class: 'c-net', title: num(r.chain_id) != null ? 'chain ' + r.chain_id : null }, str(j.network) || dash()),
        h('td', { class: 'c-target', title: [target, project].filter(Boolean).join('\n') || null },
          target ? h('span', { class: 'mono' }, target) : muted('default script'),
          project ? h('span', { class: 'proj mono' }, ' ' + shortProject(project)) : null),
        h('td', { class: 'c-total num' }, total),
        h('td', { class: 'c-cache' }, cacheBadges(j.cache, !FINAL.has(st))),
        h('td', { class: 'c-contracts' }, contractsCell(j)),
        h('td', { class: 'c-age' }, ago(when)),
        h('td', { class: ['c-error', err && st !== 'canceled' ? 'has-err' : null], title: err || null }, err ? (st === 'canceled' ? muted(err) : err) : (st === 'failed' ? muted('no message') : null)));
        rows.push(tr);
        if (open) rows.push(jobDetail(j, headers.length));
      }
      const fresh = table('tbl-jobs', headers, rows, colgroup);
      const old = box.querySelector('table.tbl-jobs');
      if (old && old.tHead && old.tBodies[0] && old.tHead.innerHTML === fresh.tHead.innerHTML) {
        reconcileRows(old.tBodies[0], rows);
        return undefined;
      }
      return fresh;
    });
  }

  // reconcileRows puts rows into tbody, keeping every row that did not change (and
  // so its hover, its focus and its tooltip).
  function reconcileRows(tbody, rows) {
    const key = (r) => r.getAttribute('data-job-id') != null ? 'j:' + r.getAttribute('data-job-id') : 'd:' + r.getAttribute('data-detail-for');
    const focused = document.activeElement && tbody.contains(document.activeElement) ? document.activeElement.closest('tr') : null;
    const focusKey = focused ? key(focused) : null;
    const old = new Map();
    for (const r of Array.from(tbody.rows)) if (!old.has(key(r))) old.set(key(r), r);
    const want = rows.map((r) => {
      const o = old.get(key(r));
      return o && o.outerHTML === r.outerHTML ? o : r;
    });
    let cur = tbody.firstChild;
    for (const r of want) {
      if (cur === r) { cur = cur.nextSibling; continue; }
      tbody.insertBefore(r, cur);
    }
    while (cur) { const next = cur.nextSibling; tbody.removeChild(cur); cur = next; }
    if (focusKey && !(document.activeElement && tbody.contains(document.activeElement))) {
      const again = want.find((r) => key(r) === focusKey);
      if (again) again.focus({ preventScroll: true });
    }
  }

  // ---------------------------------------------------------------- workers, engines

  function engineCell(id, name) {
    const s0 = str(id);
    if (!s0) return dash();
    return h('span', { title: s0 + (name ? ' (' + name + ')' : '') }, mono(shortId(s0, 12)), name ? muted(' ' + name) : null);
  }

  function containerCounts(byNet) {
    const m = obj(byNet);
    const keys = Object.keys(m).sort();
    const total = sum(keys.map((k) => m[k]));
    if (!keys.length) return h('span', { class: 'muted' }, '0');
    return h('span', { title: keys.map((k) => (k || '(no network)') + ': ' + fmtInt(m[k])).join('\n') }, fmtInt(total),
      muted(' ' + keys.map((k) => (k || 'none') + ' ' + fmtInt(m[k])).join(', ')));
  }

  function renderWorkers(d) {
    const ws = objects(d.workers);
    const em = engineMap(d);
    $('workers-sub').textContent = ws.length + ' live worker' + (ws.length === 1 ? '' : 's') + ' on ' + [...em.values()].filter((e) => e.id).length + ' engine' + (em.size === 1 ? '' : 's');
    renderInto('workers', () => {
      const out = [];
      if (!ws.length) {
        out.push(empty('dns', 'no live worker', 'No worker has reported in the last 30 s; deployments wait in the queue until one does.'));
      } else {
        out.push(table('tbl-workers', ['worker', 'host', 'engine', 'health', ['load', 'num', 'active / concurrency'], 'started', 'last seen'],
          ws.map((w) => {
            const active = num(w.active) || 0;
            const conc = num(w.concurrency) || 0;
            const seen = ts(w.last_seen);
            const late = seen != null && serverNow() - seen > 15000;
            return h('tr', null,
              h('td', { title: str(w.queue) ? 'queue ' + str(w.queue) : null }, mono(str(w.id) || '—')),
              h('td', null, str(w.host) || dash(), num(w.pid) != null ? muted(' pid ' + w.pid) : null),
              h('td', null, engineCell(w.engine_id, str(w.engine_name))),
              h('td', { class: 'trunc', title: str(w.problem) || null }, healthDot(bool(w.healthy), 'healthy', str(w.problem) || 'unhealthy')),
              h('td', { class: 'num' }, h('span', { class: 'load' }, meter(conc ? active / conc : 0, 'run'), fmtInt(active) + ' / ' + fmtInt(conc))),
              h('td', null, ago(ts(w.started_at))),
              h('td', { class: late ? 'warn-t' : null }, ago(seen)));
          })));
      }
      const engines = [...em.values()].filter((e) => e.id);
      if (engines.length) {
        out.push(h('h3', { class: 'sub' }, 'Engines'));
        out.push(table('tbl-engines', ['engine', 'workers', ['job ctrs', 'num', 'job containers by network'], ['chain ctrs', 'num', 'chain containers by network'], ['images', 'num'], 'state'],
          engines.map((e) => {
            const ctr = obj(e.containers && e.containers.containers);
            const live = e.image ? bool(e.image.live) : (e.workers.length ? true : null);
            return h('tr', null,
              h('td', null, engineCell(e.id, e.name)),
              h('td', null, e.workers.length ? e.workers.map((w) => str(w.id)).join(', ') : (e.image && arr(e.image.workers).length ? muted(arr(e.image.workers).map(str).join(', ')) : dash())),
              h('td', { class: 'num' }, e.containers ? containerCounts(ctr.job) : dash()),
              h('td', { class: 'num' }, e.containers ? containerCounts(ctr.chain) : dash()),
              h('td', { class: 'num' }, e.containers && num(e.containers.cached_images) != null ? fmtInt(e.containers.cached_images) : (e.image ? fmtInt(arr(e.image.images).length) : dash())),
              h('td', null, e.unanswered.length
                ? h('span', { class: 'health bad', title: e.unanswered.map((u) => str(u.worker_id) + ': ' + str(u.error)).join('\n') }, h('span', { class: 'dot' }), 'did not answer')
                : healthDot(live, 'live', 'no live worker')));
          })));
        const un = [...em.values()].flatMap((e) => e.unanswered);
        if (un.length) {
          out.push(h('div', { class: 'note bad' }, icon('warning', 'inline'), ' ',
            un.map((u) => [mono(shortId(u.engine_id, 12), str(u.engine_id)), ' (', mono(str(u.worker_id)), '): ', str(u.error) || 'no answer in time']).reduce((a, b) => a.concat(['; '], b))));
        }
      }
      return out;
    });
  }

  // ---------------------------------------------------------------- chains

  function renderChains(d) {
    const rows = [];
    for (const e of objects(obj(d.containers).engines)) {
      for (const c of objects(e.chains)) rows.push({ e, c });
    }
    $('chains-sub').textContent = rows.length ? rows.length + ' chain' + (rows.length === 1 ? '' : 's') + ' on ' + new Set(rows.map((r) => str(r.e.engine_id))).size + ' engine(s)' : 'managed anvil chains per engine';
    renderInto('chains', () => {
      if (!rows.length) return empty('link', 'no chains running', 'A local chain starts with the first deployment to its network.');
      return table('tbl-chains', ['network', 'engine', ['state', null, 'container state and health'], 'RPC URL', 'started'], rows.map(({ e, c }) => {
        const st = str(c.state) || 'unknown';
        const healthy = bool(c.healthy);
        const good = st === 'running' && healthy === true;
        return h('tr', null,
          h('td', { title: str(c.container) ? 'container ' + str(c.container) : null }, h('b', null, str(c.network) || '—'), str(c.container) ? h('div', { class: 'muted small mono' }, str(c.container)) : null),
          h('td', null, engineCell(e.engine_id, '')),
          h('td', null, h('span', { class: ['health', good ? 'ok' : (healthy == null && st === 'running' ? 'unknown' : 'bad')], title: st + (healthy === true ? ', healthy' : healthy === false ? ', unhealthy' : '') },
            h('span', { class: 'dot' }), st, healthy === false ? ' · unhealthy' : (healthy === true ? muted(' · healthy') : null))),
          h('td', { title: str(c.rpc_url) || null }, str(c.rpc_url) ? mono(str(c.rpc_url)) : dash()),
          h('td', null, ago(ts(c.started_at))));
      }));
    });
  }

  // ---------------------------------------------------------------- warm pool

  function slotsViz(idle, busy) {
    const cap = 24;
    const cells = [];
    for (let i = 0; i < Math.min(busy, cap); i++) cells.push(h('i', { class: 'busy' }));
    for (let i = 0; i < Math.min(idle, Math.max(0, cap - busy)); i++) cells.push(h('i', { class: 'idle' }));
    if (idle + busy > cap) cells.push(h('span', { class: 'muted small' }, '+' + (idle + busy - cap)));
    return h('span', { class: 'cells', title: idle + ' idle, ' + busy + ' busy' }, cells);
  }

  function renderPool(d) {
    const engines = objects(obj(d.containers).engines);
    const t = poolTotals(d);
    $('pool-sub').textContent = t.pools ? fmtInt(t.total) + ' of at most ' + fmtInt(t.max) + ' containers · ' + fmtInt(t.idle) + ' idle, ' + fmtInt(t.busy) + ' busy' : 'job containers kept for reuse';
    renderInto('pool', () => {
      const blocks = [];
      for (const e of engines) {
        for (const p of objects(e.pools)) {
          const keys = objects(p.keys);
          const pr = rate(p.reuse_hits, p.reuse_misses);
          blocks.push(h('div', { class: 'pool' },
            h('div', { class: 'pool-head' },
              h('span', null, mono(str(p.worker_id) || '—'), muted(' on '), mono(shortId(e.engine_id, 12), str(e.engine_id))),
              p.enabled === false ? h('span', { class: 'tag tag-off' }, 'disabled') : null,
              h('span', { class: 'spacer' }),
              h('span', { class: 'muted small' }, fmtInt(p.total) + ' / ' + fmtInt(p.max))),
            h('div', { class: 'pool-stats' },
              h('span', null, 'reuse ', h('b', { class: 'ok-t' }, fmtInt(p.reuse_hits)), (num(p.reuse_hits) === 1 ? ' hit · ' : ' hits · '), h('b', null, fmtInt(p.reuse_misses)), (num(p.reuse_misses) === 1 ? ' miss' : ' misses')),
              h('span', { class: 'pool-rate' }, meter(pr, 'ok'), fmtPct(pr))),
            keys.length
              ? table('tbl-keys', ['key', ['idle', 'num'], ['busy', 'num'], ''], keys.map((k) => h('tr', null,
                h('td', { title: str(k.key) }, mono(shortId(k.key, 16))),
                h('td', { class: 'num' }, fmtInt(k.idle)),
                h('td', { class: 'num' }, fmtInt(k.busy)),
                h('td', null, slotsViz(num(k.idle) || 0, num(k.busy) || 0)))))
              : h('div', { class: 'empty-inline' }, p.enabled === false ? 'reuse is disabled on this worker' : 'no container kept yet')));
        }
      }
      if (!blocks.length) return empty('pool', 'no pool reported', 'Workers report their pools when they answer the inventory request.');
      return blocks;
    });
  }

  // ---------------------------------------------------------------- caches

  function renderImages(d) {
    const ic = obj(d.image_cache);
    const off = ic.cache_enabled === false;
    const tags = arr(ic.cached_image_tags).map(str).filter(Boolean);
    $('images-sub').textContent = off ? 'disabled: every deployment builds its image'
      : 'runner images per engine' + (num(ic.max_age_seconds) ? ' · kept ' + fmtDur(ic.max_age_seconds) : '');
    renderInto('images', () => {
      const out = [];
      if (off) out.push(h('div', { class: 'note off' }, icon('block', 'inline'), ' image cache disabled'));
      const engines = objects(ic.engines);
      for (const e of engines) {
        const imgs = objects(e.images);
        const r = num(e.hit_rate) != null && ((num(e.hits) || 0) + (num(e.misses) || 0)) > 0 ? e.hit_rate : rate(e.hits, e.misses);
        out.push(h('div', { class: 'cache-engine' },
          h('div', { class: 'pool-head' },
            h('span', null, mono(shortId(e.engine_id, 12), str(e.engine_id))),
            healthDot(bool(e.live), 'live', 'no live worker'),
            h('span', { class: 'spacer' }),
            h('span', { class: 'muted small' }, plural(e.hits, 'hit') + ' · ' + plural(e.misses, 'miss', 'misses') + ' · ' + plural(e.builds, 'build'))),
          h('div', { class: 'pool-stats' }, h('span', null, 'hit rate'), h('span', { class: 'pool-rate' }, meter(r, 'ok'), fmtPct(r))),
          imgs.length
            ? table('tbl-images', ['tag', ['size', 'num'], ['age', 'num'], ['idle', 'num']], imgs.map((im) => {
              const note = [str(im.image_id), num(im.build_ms) ? 'built in ' + fmtMs(im.build_ms) : null,
                im.adopted ? 'adopted: found on the engine without an entry' : null, ts(im.built_at) ? 'built ' + fmtTime(ts(im.built_at)) : null,
                ts(im.last_used) ? 'last used ' + fmtTime(ts(im.last_used)) : null].filter(Boolean).join('\n');
              return h('tr', null,
                h('td', { class: 'trunc', title: note || null }, mono(str(im.tag) || shortId(im.image_id, 19)), im.adopted ? h('span', { class: 'tag' }, 'adopted') : null),
                h('td', { class: 'num' }, fmtMB(im.size_bytes)),
                h('td', { class: 'num' }, num(im.age_seconds) != null ? fmtDur(im.age_seconds) : dash()),
                h('td', { class: 'num' }, num(im.idle_seconds) != null ? fmtDur(im.idle_seconds) : dash()));
            }))
            : h('div', { class: 'empty-inline' }, 'no image cached on this engine')));
      }
      if (!engines.length) out.push(empty('layers', off ? 'image cache disabled' : 'no image cached yet', 'The first deployment builds the runner image; later ones reuse it.'));
      if (tags.length) out.push(h('div', { class: 'muted small foot-note' }, 'tags kept: ', tags.map((t, i) => [i ? ', ' : '', mono(t)])));
      return out;
    });
  }

  function renderCompile(d) {
    const cc = obj(d.compile_cache);
    const off = cc.cache_enabled === false;
    $('compile-sub').textContent = off ? 'disabled: forge compiles every deployment'
      : 'forge artifacts per content key' + (num(cc.cache_ttl_seconds) ? ' · kept ' + fmtDur(cc.cache_ttl_seconds) + ' after use' : '');
    renderInto('compile', () => {
      const out = [];
      const comp = obj(d.compilers);
      const versions = arr(comp.versions).map(str).filter(Boolean);
      out.push(h('div', { class: 'muted small', id: 'compilers-line' }, 'compilers on the engines: ',
        versions.length ? mono(versions.join(', ')) : 'none fetched yet',
        arr(comp.default_versions).length ? muted(' · a range resolves to the newest of ' + arr(comp.default_versions).map(str).join(', ')) : null));
      if (off) out.push(h('div', { class: 'note off' }, icon('block', 'inline'), ' compile cache disabled'));
      const stores = objects(cc.stores);
      if (!stores.length) {
        out.push(empty('memory', off ? 'compile cache disabled' : 'nothing compiled yet', 'A project compiled once is not compiled again while its sources are unchanged.'));
        return out;
      }
      out.push(table('tbl-stores', ['store', ['entries', 'num'], ['size', 'num'], ['hits', 'num'], ['misses', 'num'], ['rate', 'num']], stores.map((st) => {
        const r = rate(st.hits, st.misses);
        return h('tr', null,
          h('td', { class: 'trunc', title: str(st.store_id) }, mono(str(st.store_id) || '—')),
          h('td', { class: 'num' }, fmtInt(arr(st.entries).length)),
          h('td', { class: 'num' }, fmtBytes(st.size_bytes)),
          h('td', { class: 'num' }, fmtInt(st.hits)),
          h('td', { class: 'num' }, fmtInt(st.misses)),
          h('td', { class: 'num' }, fmtPct(r)));
      })));
      const entries = [];
      for (const st of stores) for (const en of objects(st.entries)) entries.push(en);
      entries.sort((a, b) => (ts(b.last_used) || 0) - (ts(a.last_used) || 0));
      if (entries.length) {
        const shown = entries.slice(0, 8);
        out.push(h('h3', { class: 'sub' }, 'Entries', muted(' most recently used first')));
        out.push(table('tbl-entries', ['key', ['size', 'num'], ['compile', 'num', 'how long forge took to compile it'], ['last used', 'num']], shown.map((en) => h('tr', null,
          h('td', { title: [str(en.key), str(en.store_id) ? 'store ' + str(en.store_id) : null, ts(en.created_at) ? 'created ' + fmtTime(ts(en.created_at)) : null].filter(Boolean).join('\n') }, mono(shortId(en.key, 16))),
          h('td', { class: 'num' }, fmtBytes(en.size_bytes)),
          h('td', { class: 'num' }, fmtMs(en.compile_ms)),
          h('td', { class: 'num' }, ago(ts(en.last_used)))))));
        if (entries.length > shown.length) out.push(h('div', { class: 'muted small foot-note' }, '+' + (entries.length - shown.length) + ' more'));
      }
      return out;
    });
  }

  // ---------------------------------------------------------------- orchestration

  function selectionActive() {
    const sel = window.getSelection && window.getSelection();
    return !!(sel && sel.toString() && $('app').contains(sel.anchorNode));
  }

  function render() {
    renderHeader();
    const d = state.data;
    if (!d) return;
    // Keep what the operator is selecting (a job id, an address) until they are done.
    if (selectionActive()) { state.pendingRender = true; return; }
    state.pendingRender = false;
    tick();
    const parts = [renderCards, renderChart, renderJobs, renderWorkers, renderChains, renderPool, renderImages, renderCompile];
    for (const fn of parts) {
      try { fn(d); } catch (e) { console.error('dashboard: ' + fn.name + ' failed', e); }
    }
    $('foot-generated').textContent = state.genAt != null ? 'generated ' + fmtTime(state.genAt) : '';
  }

  async function describeFailure(res) {
    if (res.status === 401) return 'not authorized: open the dashboard with the admin token as the password';
    let detail = '';
    try {
      const text = await res.text();
      try { detail = str(obj(JSON.parse(text)).error) || str(obj(JSON.parse(text)).message); } catch (e) { detail = text.trim().slice(0, 160); }
    } catch (e) { /* no body */ }
    return 'could not refresh: HTTP ' + res.status + (res.statusText ? ' ' + res.statusText : '') + (detail ? ': ' + detail : '');
  }

  async function refresh() {
    if (state.inflight) return;
    state.inflight = true;
    clearTimeout(state.timer);
    const ctl = typeof AbortController === 'function' ? new AbortController() : null;
    const timeout = setTimeout(() => ctl && ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      let res;
      try {
        res = await fetch(API, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' }, signal: ctl ? ctl.signal : undefined });
      } catch (e) {
        throw new Error(e && e.name === 'AbortError' ? 'could not refresh: the API did not answer within ' + FETCH_TIMEOUT_MS / 1000 + ' s' : 'could not refresh: the API cannot be reached (network error)');
      }
      if (!res.ok) throw new Error(await describeFailure(res));
      let data;
      try { data = await res.json(); } catch (e) { throw new Error('could not refresh: the answer is not JSON'); }
      if (!data || typeof data !== 'object' || Array.isArray(data)) throw new Error('could not refresh: the answer is not an overview');
      state.data = data;
      state.fetchedAt = Date.now();
      state.genAt = ts(data.generated_at);
      state.error = null;
      state.failures = 0;
      render();
      if (!state.scrolledToHash) {
        state.scrolledToHash = true;
        // A shared link opens its job, with its output.
        const m = /^#job=(.+)$/.exec(location.hash);
        if (m && document.querySelector('tr[data-job-id="' + cssEscape(safeDecode(m[1])) + '"]')) openJob(safeDecode(m[1]));
      }
    } catch (e) {
      state.error = str(e && e.message) || 'could not refresh';
      state.failures++;
      console.warn('dashboard:', state.error);
      renderHeader();
      if (!state.data) {
        const pill = $('ready');
        pill.querySelector('.pill-text').textContent = 'status unknown';
        pill.title = state.error;
        for (const e of document.querySelectorAll('.loading')) e.textContent = 'no data yet';
      }
    } finally {
      clearTimeout(timeout);
      state.inflight = false;
      renderBanner();
      state.timer = setTimeout(refresh, REFRESH_MS);
    }
  }

  function init() {
    for (const b of document.querySelectorAll('#scale button')) {
      b.addEventListener('click', () => {
        state.logScale = b.dataset.scale === 'log';
        try { window.localStorage.setItem('deployer.chart.scale', state.logScale ? 'log' : 'linear'); } catch (e) { /* storage off */ }
        if (state.data) renderChart(state.data);
      });
    }
    let resizeTimer = 0;
    let lastWidth = window.innerWidth;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        if (window.innerWidth === lastWidth) return;
        lastWidth = window.innerWidth;
        if (state.data) renderChart(state.data);
      }, 150);
    });
    document.addEventListener('selectionchange', () => {
      if (state.pendingRender && !selectionActive()) render();
    });
    document.addEventListener('visibilitychange', () => {
      // Catch up at once when the tab comes back.
      if (!document.hidden && Date.now() - state.fetchedAt > REFRESH_MS) refresh();
    });
    const m = /^#job=(.+)$/.exec(location.hash);
    if (m) {
      state.expanded.add(safeDecode(m[1]));
    }
    setInterval(tick, 1000);
    refresh();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
