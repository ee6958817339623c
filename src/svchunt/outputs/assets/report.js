/* svchunt report. Every value from the data block is attacker-influenced (event fields, rule text):
   it reaches the page only through textContent / option values, never innerHTML, and never as a URL. */
(function () {
  'use strict';
  var T0 = performance.now();
  var DATA = JSON.parse(document.getElementById('svchunt-data').textContent);
  var LEVELS = ['informational', 'low', 'medium', 'high', 'critical'];
  var RANK = {}; LEVELS.forEach(function (l, i) { RANK[l] = i; });
  var PAGE = 200, BINS = 240, MAX_HOSTS = 40, KEY_FIELDS = ['ServiceName', 'ImagePath', 'ServiceFileName', 'CommandLine', 'TargetFilename', 'PipeName', 'RelativeTargetName', 'ShareName', 'TargetObject', 'Image', 'Details'];
  var ALERTS = DATA.alerts || [];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function lvlClass(l) { return 'lvl lvl-' + (RANK.hasOwnProperty(l) ? l : 'other'); }
  function str(v) { return v === null || v === undefined ? '' : (typeof v === 'object' ? JSON.stringify(v) : String(v)); }
  function shortTs(ts) { return ts ? String(ts).replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '(no time)'; }
  function byId(id) { return document.getElementById(id); }

  // Pre-compute what filtering needs once, so a filter change is a plain array scan.
  var RULES = DATA.rules || [];
  // rules[i] holds the rule fields of the alert document (outputs/document.py): copied onto each alert
  ALERTS.forEach(function (a, i) {
    var r = RULES[a.rule] || {};
    for (var k in r) if (Object.prototype.hasOwnProperty.call(r, k)) a[k] = r[k];
    a._i = i;
    a._t = a.timestamp ? Date.parse(a.timestamp) : NaN;
    a._host = a.computer || '(unknown)';
    a._rank = RANK.hasOwnProperty(a.level) ? RANK[a.level] : -1;
    var f = a.fields || {};
    var key = '';
    for (var j = 0; j < KEY_FIELDS.length && !key; j++) if (f[KEY_FIELDS[j]] !== undefined && f[KEY_FIELDS[j]] !== null) key = KEY_FIELDS[j] + ': ' + str(f[KEY_FIELDS[j]]);
    if (!key && a.group && Object.keys(a.group).length) key = 'group: ' + str(a.group);
    a._key = key.length > 300 ? key.slice(0, 300) + '…' : key;
  });

  // Built on the first free-text search only: it is the costliest part of start-up on large reports.
  function searchText(a) {
    if (a._s === undefined) {
      var parts = [a.title, a.rule_id, a._host, a.kind, (a.techniques || []).join(' '), (a.tags || []).join(' ')];
      var f = a.fields || {};
      for (var k in f) parts.push(k + '=' + str(f[k]));
      (a.evidence || []).forEach(function (e) {
        parts.push(e.source);
        if (e.fields) for (var k2 in e.fields) parts.push(k2 + '=' + str(e.fields[k2]));
      });
      a._s = parts.join('\n').toLowerCase();
    }
    return a._s;
  }

  /* ---------- header and summary ---------- */
  function renderSummary() {
    var s = DATA.summary || {};
    var cards = byId('cards');
    [['files', s.files], ['records read', s.records_read], ['records skipped', s.records_skipped],
     ['problems', s.problems], ['records matched', s.records_matched], ['rules loaded', s.rules_loaded],
     ['rules refused', s.rules_refused], ['correlations loaded', s.correlations_loaded], ['alerts', s.alerts],
     ['seconds', s.seconds]].forEach(function (kv) {
      if (kv[1] === undefined || kv[1] === null) return;
      var c = el('div', 'card'); c.appendChild(el('div', 'n', kv[1])); c.appendChild(el('div', 'k', kv[0]));
      cards.appendChild(c);
    });
    var lv = byId('by-level');
    var counts = s.by_level || {};
    Object.keys(counts).forEach(function (l) {
      var span = el('span', lvlClass(l), l + ': ' + counts[l]);
      lv.appendChild(span); lv.appendChild(document.createTextNode(' '));
    });
    (DATA.runs || []).forEach(function (r) {
      byId('runs').appendChild(el('div', 'muted', 'run ' + str(r.run_id) + ': ' + str(r.started) + ' → ' + str(r.finished) +
        ', hosts: ' + str((r.hosts || []).join(', ')) + ', alerts: ' + str(r.alerts_total) + ' (' + str(r.alerts_new) + ' new)'));
    });
    (DATA.notes || []).forEach(function (n) { byId('runs').appendChild(el('div', 'muted', 'note: ' + n)); });
  }

  /* ---------- filters ---------- */
  var F = { level: '', rule: '', host: '', tech: '', text: '' };
  var filtered = ALERTS, shown = 0;

  function fillSelect(id, label, entries) {
    var s = byId(id);
    s.appendChild(el('option', null, label)).value = '';
    entries.forEach(function (e) { var o = el('option', null, e[1]); o.value = e[0]; s.appendChild(o); });
  }
  function countBy(fn) {
    var m = new Map();
    ALERTS.forEach(function (a) { fn(a).forEach(function (k) { m.set(k, (m.get(k) || 0) + 1); }); });
    return m;
  }
  function setupFilters() {
    fillSelect('f-level', 'any level', LEVELS.slice().reverse().map(function (l) { return [l, '≥ ' + l]; }));
    var rules = new Map();
    ALERTS.forEach(function (a) { var r = rules.get(a.rule_id); if (r) r[1]++; else rules.set(a.rule_id, [a.title, 1]); });
    fillSelect('f-rule', 'any rule', Array.from(rules.entries()).sort(function (x, y) { return y[1][1] - x[1][1]; })
      .map(function (e) { return [e[0], e[1][0] + ' (' + e[1][1] + ')']; }));
    var hosts = countBy(function (a) { return [a._host]; });
    fillSelect('f-host', 'any host', Array.from(hosts.entries()).sort(function (x, y) { return y[1] - x[1]; })
      .map(function (e) { return [e[0], e[0] + ' (' + e[1] + ')']; }));
    var techs = countBy(function (a) { return a.techniques || []; });
    fillSelect('f-tech', 'any technique', Array.from(techs.keys()).sort().map(function (t) { return [t, t + ' (' + techs.get(t) + ')']; }));
    ['f-level', 'f-rule', 'f-host', 'f-tech'].forEach(function (id) {
      byId(id).addEventListener('change', function () { F[id.slice(2)] = this.value; update(); });
    });
    var timer = null;
    byId('f-text').addEventListener('input', function () {
      var v = this.value; clearTimeout(timer);
      timer = setTimeout(function () { F.text = v.trim().toLowerCase(); update(); }, 120);
    });
    byId('f-reset').addEventListener('click', function () {
      F = { level: '', rule: '', host: '', tech: '', text: '' };
      ['f-level', 'f-rule', 'f-host', 'f-tech', 'f-text'].forEach(function (id) { byId(id).value = ''; });
      update();
    });
    byId('more').addEventListener('click', function () { renderRows(PAGE); });
  }
  function matches(a) {
    if (F.level && a._rank < RANK[F.level]) return false;
    if (F.rule && a.rule_id !== F.rule) return false;
    if (F.host && a._host !== F.host) return false;
    if (F.tech && (a.techniques || []).indexOf(F.tech) < 0) return false;
    if (F.text) {
      var words = F.text.split(/\s+/);
      var text = searchText(a);
      for (var i = 0; i < words.length; i++) if (text.indexOf(words[i]) < 0) return false;
    }
    return true;
  }

  /* ---------- timeline per host ---------- */
  var tMin = Infinity, tMax = -Infinity;
  ALERTS.forEach(function (a) { if (!isNaN(a._t)) { if (a._t < tMin) tMin = a._t; if (a._t > tMax) tMax = a._t; } });
  function renderTimeline(list) {
    var box = byId('timeline-rows'); box.textContent = '';
    var per = new Map(), untimed = 0;
    list.forEach(function (a) {
      if (isNaN(a._t)) { untimed++; return; }
      var h = per.get(a._host); if (!h) { h = { n: 0, bins: new Map() }; per.set(a._host, h); }
      h.n++;
      var b = tMax > tMin ? Math.min(BINS - 1, Math.floor((a._t - tMin) / (tMax - tMin) * BINS)) : 0;
      var key = b * 8 + (a._rank + 1);
      h.bins.set(key, (h.bins.get(key) || 0) + 1);
    });
    var hosts = Array.from(per.entries()).sort(function (x, y) { return y[1].n - x[1].n || (x[0] < y[0] ? -1 : 1); });
    var span = tMax > tMin ? (tMax - tMin) / BINS : 0;
    hosts.slice(0, MAX_HOSTS).forEach(function (entry) {
      var host = entry[0], h = entry[1];
      var row = el('div', 'tl-row'); row.dataset.host = host;
      var label = el('div', 'tl-host', host); label.title = 'show only ' + host;
      label.addEventListener('click', function () { F.host = host; byId('f-host').value = host; update(); });
      row.appendChild(label);
      row.appendChild(el('div', 'tl-count', h.n));
      var s = svg('svg', { 'class': 'tl', viewBox: '0 0 ' + BINS * 4 + ' 30', preserveAspectRatio: 'none' });
      // One path per level (not one element per bin) keeps big timelines cheap to draw.
      var paths = {}, counts = {};
      h.bins.forEach(function (count, key) {
        var b = Math.floor(key / 8), r = (key % 8) - 1;
        var lvl = r >= 0 ? LEVELS[r] : 'other';
        paths[lvl] = (paths[lvl] || '') + 'M' + b * 4 + ' ' + (24 - Math.max(r, 0) * 6) + 'h6v6h-6z';
        counts[lvl] = (counts[lvl] || 0) + count;
        (h.at || (h.at = {}))[b] = (h.at[b] || '') + count + ' ' + lvl + ' ';
      });
      Object.keys(paths).forEach(function (lvl) {
        var p = svg('path', { d: paths[lvl], 'class': 'lvl-' + lvl });
        p.setAttribute('data-count', counts[lvl]);
        s.appendChild(p);
      });
      var tip = svg('title', {}); s.appendChild(tip);
      tip.textContent = host + ': ' + h.n + ' alert(s)';
      s.addEventListener('mousemove', function (ev) {
        var box2 = s.getBoundingClientRect();
        var b = Math.max(0, Math.min(BINS - 1, Math.floor((ev.clientX - box2.left) / box2.width * BINS)));
        var txt = h.at[b] || h.at[b - 1] || h.at[b + 1];
        tip.textContent = txt ? txt + 'alert(s) near ' + new Date(tMin + b * span).toISOString() : host + ': ' + h.n + ' alert(s)';
      });
      row.appendChild(s); box.appendChild(row);
    });
    var note = [];
    if (hosts.length > MAX_HOSTS) note.push((hosts.length - MAX_HOSTS) + ' more host(s) not drawn; filter by host to see them');
    if (untimed) note.push(untimed + ' alert(s) without a timestamp');
    byId('timeline-note').textContent = note.join('; ');
    byId('tl-start').textContent = isFinite(tMin) ? new Date(tMin).toISOString() : '';
    byId('tl-end').textContent = isFinite(tMax) ? new Date(tMax).toISOString() : '';
  }

  /* ---------- alert list ---------- */
  function kvTable(obj) {
    var t = el('table', 'kv'), keys = Object.keys(obj || {}).sort();
    keys.forEach(function (k) {
      var tr = el('tr'); tr.appendChild(el('td', null, k)); tr.appendChild(el('td', null, str(obj[k]))); t.appendChild(tr);
    });
    return t;
  }
  function evidenceLine(e) {
    return [e.timestamp ? shortTs(e.timestamp) : '(no time)', e.source + (e.record_id !== null && e.record_id !== undefined ? ' #' + e.record_id : '') +
      (e.line ? ' line ' + e.line : ''), 'EventID ' + str(e.event_id), str(e.channel)].join('  ·  ');
  }
  function renderDetail(a) {
    var td = el('td'); td.colSpan = 7;
    td.appendChild(el('h4', null, a.title));
    var meta = { rule_id: a.rule_id, kind: a.kind, level: a.level, alert_id: a.alert_id, tags: (a.tags || []).join(', ') };
    if (a.covers && a.covers.length) meta.covers = a.covers.join(', ');
    if (a.description) meta.description = a.description;
    if (a.falsepositives && a.falsepositives.length) meta.falsepositives = a.falsepositives.join('; ');
    if (a.group && Object.keys(a.group).length) meta.group = a.group;
    if (a.extra && Object.keys(a.extra).length) meta.extra = a.extra;
    td.appendChild(kvTable(meta));
    var ev = (a.evidence || []).slice();
    if (a.kind === 'correlation') ev.sort(function (x, y) { return (x.timestamp || '') < (y.timestamp || '') ? -1 : (x.timestamp || '') > (y.timestamp || '') ? 1 : x.ordinal - y.ordinal; });
    td.appendChild(el('h4', null, a.kind === 'correlation' ? 'Chain of ' + ev.length + ' events, in time order' : 'Evidence (' + ev.length + ')'));
    ev.forEach(function (e, i) {
      var div = el('div', 'chain evidence');
      div.appendChild(el('span', 'step', (i + 1) + '. '));
      div.appendChild(document.createTextNode(evidenceLine(e)));
      var fields = e.fields || (ev.length === 1 ? a.fields : null);
      if (fields) div.appendChild(kvTable(fields));
      td.appendChild(div);
    });
    if (ev.length !== 1) {
      td.appendChild(el('h4', null, 'Alert fields'));
      td.appendChild(kvTable(a.fields));
    }
    var tr = el('tr', 'detail'); tr.appendChild(td);
    return tr;
  }
  function alertRow(a) {
    var tr = el('tr', 'alert-row'); tr.dataset.idx = a._i;
    tr.appendChild(el('td', 'ts', shortTs(a.timestamp)));
    var l = el('td'); l.appendChild(el('span', lvlClass(a.level), a.level)); tr.appendChild(l);
    tr.appendChild(el('td', 'host', a._host));
    tr.appendChild(el('td', 'rule', a.title));
    tr.appendChild(el('td', 'tech', (a.techniques || []).join(' ')));
    tr.appendChild(el('td', null, a.kind + (a.evidence && a.evidence.length > 1 ? ' (' + a.evidence.length + ')' : '')));
    tr.appendChild(el('td', 'key', a._key));
    tr.addEventListener('click', function () {
      var next = tr.nextSibling;
      if (next && next.classList.contains('detail')) { next.remove(); tr.classList.remove('open'); return; }
      tr.classList.add('open');
      tr.parentNode.insertBefore(renderDetail(a), tr.nextSibling);
    });
    return tr;
  }
  function renderRows(n) {
    var body = byId('alert-rows'), frag = document.createDocumentFragment();
    var end = Math.min(filtered.length, shown + n);
    for (var i = shown; i < end; i++) frag.appendChild(alertRow(filtered[i]));
    body.appendChild(frag); shown = end;
    var rest = filtered.length - shown;
    byId('more').classList.toggle('hidden', rest <= 0);
    byId('more').textContent = 'show ' + Math.min(PAGE, rest) + ' more (' + rest + ' not shown)';
  }
  function update() {
    var t = performance.now();
    filtered = ALERTS.filter(matches);
    byId('alert-rows').textContent = ''; shown = 0;
    renderRows(PAGE);
    renderTimeline(filtered);
    byId('count').textContent = filtered.length + ' of ' + ALERTS.length + ' alerts';
    window.svchuntTiming.lastFilterMs = performance.now() - t;
  }

  /* ---------- audit, problems, refused: generic, since they are plain records ---------- */
  function recordsTable(rows) {
    var keys = [];
    rows.forEach(function (r) { if (r && typeof r === 'object') Object.keys(r).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); }); });
    var t = el('table', 'records'), head = el('tr');
    keys.forEach(function (k) { head.appendChild(el('th', null, k)); });
    var thead = el('thead'); thead.appendChild(head); t.appendChild(thead);
    var body = el('tbody');
    rows.forEach(function (r) {
      var tr = el('tr');
      if (r && typeof r === 'object') keys.forEach(function (k) { tr.appendChild(el('td', null, str(r[k]))); });
      else tr.appendChild(el('td', null, str(r)));
      body.appendChild(tr);
    });
    t.appendChild(body);
    return t;
  }
  function renderAudit() {
    var a = DATA.audit;
    if (a === null || a === undefined) return;
    var sec = byId('audit'); sec.classList.remove('hidden');
    var box = byId('audit-body');
    if (Array.isArray(a)) { box.appendChild(recordsTable(a)); return; }
    var scalars = {};
    Object.keys(a).forEach(function (k) {
      var v = a[k];
      if (Array.isArray(v) && v.length && typeof v[0] === 'object') {
        box.appendChild(el('h4', null, k + ' (' + v.length + ')'));
        box.appendChild(recordsTable(v));
      } else scalars[k] = v;
    });
    if (Object.keys(scalars).length) box.insertBefore(kvTable(scalars), box.firstChild);
  }
  function renderProblems() {
    if ((DATA.problems || []).length) {
      byId('problems').classList.remove('hidden');
      byId('problems-body').appendChild(recordsTable(DATA.problems.map(function (g) {
        return { reason: g.reason, count: g.count, examples: g.examples.map(function (e) { return e[0] + ' (' + e[1] + ')'; }).join('\n') };
      })));
    }
    if ((DATA.refused || []).length) {
      byId('refused').classList.remove('hidden');
      byId('refused-body').appendChild(recordsTable(DATA.refused));
    }
  }

  function renderLegend() {
    var box = byId('tl-legend');
    LEVELS.slice().reverse().forEach(function (l) {
      box.appendChild(el('span', lvlClass(l), l)); box.appendChild(document.createTextNode(' '));
    });
  }

  window.svchuntTiming = {};
  renderLegend();
  renderSummary();
  setupFilters();
  update();
  renderAudit();
  renderProblems();
  if (!ALERTS.length) byId('count').textContent = 'No alerts.';
  // An audit-only report has no hunt: its hunt sections would only show empty boxes.
  if (!DATA.summary) ['summary', 'timeline', 'alerts'].forEach(function (id) { byId(id).classList.add('hidden'); });
  window.svchuntTiming.readyMs = performance.now() - T0;
  window.svchuntTiming.sinceNavigationMs = performance.now();
  document.documentElement.setAttribute('data-ready', '1');
})();
