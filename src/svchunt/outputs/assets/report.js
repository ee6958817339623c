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
  var INCIDENTS = DATA.incidents || [];
  var ITEM_TITLES = DATA.item_titles || {};
  var TELLING = DATA.telling_fields || KEY_FIELDS;
  var CARD_PAGE = 50;

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
    var d = telling(a);
    var key = d[0] ? d[0] + ': ' + d[1] : '';
    a._key = key.length > 300 ? key.slice(0, 300) + '…' : key;
    a._inc = -1;
  });
  var INC_BY_HOST = {};
  INCIDENTS.forEach(function (inc, n) {
    var hosts = {};
    (inc.steps || []).forEach(function (i) { if (ALERTS[i]) { ALERTS[i]._inc = n; hosts[ALERTS[i]._host] = 1; } });
    Object.keys(hosts).forEach(function (h) { (INC_BY_HOST[h] || (INC_BY_HOST[h] = [])).push(n); });
  });

  // The field that tells what an alert saw (same order as the terminal timeline); correlations show their group.
  function tellingOf(f) {
    for (var j = 0; j < TELLING.length; j++) {
      var k = TELLING[j], v = f[k];
      if (v === undefined || v === null || v === '') continue;
      if (k === 'TargetObject' && f.Details !== undefined && f.Details !== null && f.Details !== '') return [k, str(v) + ' = ' + str(f.Details)];
      if (k === 'RelativeTargetName' && f.ShareName) return [k, str(f.ShareName) + '\\' + str(v)];
      return [k, str(v)];
    }
    return ['', ''];
  }
  function telling(a) {
    var d = tellingOf(a.fields || {});
    if (d[0]) return d;
    for (var i = 0; i < (a.evidence || []).length; i++) if (a.evidence[i].fields) { d = tellingOf(a.evidence[i].fields); if (d[0]) return d; }
    if (a.kind === 'correlation') return ['group', groupText(a.group) + (a.evidence ? (groupText(a.group) ? ', ' : '') + a.evidence.length + ' events' : '')];
    return ['', ''];
  }
  function groupText(g) {
    return Object.keys(g || {}).filter(function (k) { return k !== 'Computer' && g[k] !== null && g[k] !== ''; })
      .map(function (k) { return k + '=' + str(g[k]); }).join(', ');
  }
  function itemWords(c) { return ITEM_TITLES[c] ? ITEM_TITLES[c] + ' (' + c + ')' : c; }

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
  var F = { level: '', rule: '', host: '', tech: '', incident: '', text: '' };
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
    fillSelect('f-incident', 'any incident', INCIDENTS.map(function (inc, n) {
      return [String(n), '#' + (n + 1) + ' ' + inc.level + ': ' + (inc.title.length > 80 ? inc.title.slice(0, 80) + '…' : inc.title)];
    }));
    ['f-level', 'f-rule', 'f-host', 'f-tech', 'f-incident'].forEach(function (id) {
      byId(id).addEventListener('change', function () { F[id.slice(2)] = this.value; update(); });
    });
    var timer = null;
    byId('f-text').addEventListener('input', function () {
      var v = this.value; clearTimeout(timer);
      timer = setTimeout(function () { F.text = v.trim().toLowerCase(); update(); }, 120);
    });
    byId('f-reset').addEventListener('click', function () {
      F = { level: '', rule: '', host: '', tech: '', incident: '', text: '' };
      ['f-level', 'f-rule', 'f-host', 'f-tech', 'f-incident', 'f-text'].forEach(function (id) { byId(id).value = ''; });
      update();
    });
    byId('more').addEventListener('click', function () { renderRows(PAGE); });
  }
  function matches(a) {
    if (F.level && a._rank < RANK[F.level]) return false;
    if (F.rule && a.rule_id !== F.rule) return false;
    if (F.host && a._host !== F.host) return false;
    if (F.tech && (a.techniques || []).indexOf(F.tech) < 0) return false;
    if (F.incident !== '' && a._inc !== +F.incident) return false;
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
      // The host's incidents as spans along the top edge: where one story starts and ends.
      (INC_BY_HOST[host] || []).forEach(function (n) {
        var inc = INCIDENTS[n], t0 = Date.parse(inc.start), t1 = Date.parse(inc.end || inc.start);
        if (isNaN(t0) || !(tMax >= tMin)) return;
        var x0 = tMax > tMin ? (t0 - tMin) / (tMax - tMin) * BINS * 4 : 0;
        var x1 = tMax > tMin ? (Math.max(t1, t0) - tMin) / (tMax - tMin) * BINS * 4 : 0;
        var r = svg('rect', { x: x0.toFixed(1), y: 0, width: Math.max(x1 - x0, 3).toFixed(1), height: 3,
          'class': 'inc-span lvl-' + (RANK.hasOwnProperty(inc.level) ? inc.level : 'other') });
        r.setAttribute('data-incident', String(n + 1));
        s.appendChild(r);
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
  function kvTable(obj, keepOrder) {
    var t = el('table', 'kv'), keys = Object.keys(obj || {});
    if (!keepOrder) keys.sort();
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
    var td = el('td'); td.colSpan = 8;
    td.appendChild(el('h4', null, a.title));
    var meta = { rule_id: a.rule_id, kind: a.kind, level: a.level, alert_id: a.alert_id, tags: (a.tags || []).join(', ') };
    if (a.covers && a.covers.length) meta.claims = a.covers.map(itemWords).join('; ');
    if (a._inc >= 0) meta.incident = '#' + (a._inc + 1) + ' ' + INCIDENTS[a._inc].title;
    if (a.description) meta.description = a.description;
    if (a.falsepositives && a.falsepositives.length) meta.falsepositives = a.falsepositives.join('; ');
    // Correlation groups and parameters as fields of their own, not a JSON blob.
    Object.keys(a.group || {}).forEach(function (k) { meta['group: ' + k] = a.group[k]; });
    Object.keys(a.extra || {}).forEach(function (k) {
      var v = a.extra[k];
      meta['correlation: ' + k] = Array.isArray(v) ? v.map(function (x) { return typeof x === 'object' ? JSON.stringify(x) : String(x); }).join(', ') : v;
    });
    td.appendChild(kvTable(meta, true));
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
    tr.appendChild(el('td', 'inc', a._inc >= 0 ? '#' + (a._inc + 1) : ''));
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

  /* ---------- incident cards ---------- */
  var cardsShown = 0;
  function factLine(box, label, value) {
    if (value === undefined || value === null || value === '' || (Array.isArray(value) && !value.length)) return;
    var d = el('div', 'fact');
    d.appendChild(el('span', 'k', label + ': '));
    d.appendChild(el('span', 'v', Array.isArray(value) ? value.join(', ') : value));
    box.appendChild(d);
  }
  function sourceText(src) {
    var addrs = src.addresses || [], ws = src.workstations || [];
    if (addrs.length) return addrs.join(', ') + (ws.length ? ' (' + ws.join(', ') + ')' : '');
    return ws.join(', ');
  }
  function renderSteps(inc, box) {
    (inc.steps || []).forEach(function (i, k) {
      var a = ALERTS[i], li = el('li', 'step-row');
      li.dataset.alert = a.alert_id;
      var top = el('div', 'step-head');
      top.appendChild(el('span', 'ts', shortTs(a.timestamp)));
      top.appendChild(el('span', lvlClass(a.level), a.level));
      top.appendChild(el('span', 'step-title', a.title));
      if (a.kind !== 'detection') top.appendChild(el('span', 'muted', a.kind + (a.evidence.length > 1 ? ', ' + a.evidence.length + ' events' : '')));
      li.appendChild(top);
      var d = telling(a);
      if (d[0]) {
        var tf = el('div', 'telling');
        tf.appendChild(el('span', 'k', d[0] + ': '));
        tf.appendChild(el('span', 'v', d[1]));
        li.appendChild(tf);
      }
      li.appendChild(el('div', 'muted evref', (a.evidence || []).map(function (e) {
        return e.source + (e.record_id !== null && e.record_id !== undefined ? ' #' + e.record_id : (e.line ? ' line ' + e.line : '')) + ' (EventID ' + str(e.event_id) + ')';
      }).join('  ·  ')));
      box.appendChild(li);
    });
  }
  function incidentCard(inc, n) {
    var card = el('div', 'incident lvl-border-' + (RANK.hasOwnProperty(inc.level) ? inc.level : 'other'));
    card.dataset.id = inc.incident_id; card.dataset.level = inc.level;
    var head = el('div', 'inc-head');
    head.tabIndex = 0; head.setAttribute('role', 'button'); head.setAttribute('aria-expanded', 'false');
    head.appendChild(el('span', 'inc-n', '#' + (n + 1)));
    head.appendChild(el('span', lvlClass(inc.level), inc.level));
    head.appendChild(el('span', 'inc-title', inc.title));
    card.appendChild(head);
    var facts = el('div', 'inc-facts');
    factLine(facts, 'host', inc.host);
    factLine(facts, 'time (UTC)', shortTs(inc.start) + (inc.end && inc.end !== inc.start ? ' → ' + shortTs(inc.end) : ''));
    var src = inc.source || {};
    factLine(facts, 'source', sourceText(src));
    factLine(facts, 'account', src.accounts);
    factLine(facts, 'services', inc.services);
    factLine(facts, 'images', inc.images);
    factLine(facts, 'alerts', String((inc.steps || []).length));
    factLine(facts, 'techniques', inc.techniques);
    factLine(facts, 'what happened', (inc.claims || []).map(function (c) { return ITEM_TITLES[c] || c; }));
    factLine(facts, 'incident id', inc.incident_id);
    if (inc.related && inc.related.length) factLine(facts, 'related incidents', inc.related);
    card.appendChild(facts);
    var body = el('div', 'inc-body hidden');
    var steps = el('ol', 'inc-steps');
    body.appendChild(steps);
    var show = el('button', 'inc-filter', 'show these alerts in the list'); show.type = 'button';
    show.addEventListener('click', function () {
      F.incident = String(n); byId('f-incident').value = String(n); update();
      byId('alerts').scrollIntoView();
    });
    body.appendChild(show);
    card.appendChild(body);
    function toggle() {
      var open = body.classList.contains('hidden');
      if (open && !steps.firstChild) renderSteps(inc, steps);  // built on first open: big reports stay fast
      body.classList.toggle('hidden', !open);
      card.classList.toggle('open', open);
      head.setAttribute('aria-expanded', open ? 'true' : 'false');
    }
    head.addEventListener('click', toggle);
    head.addEventListener('keydown', function (ev) { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); toggle(); } });
    return card;
  }
  function renderCards(n) {
    var box = byId('incident-cards'), frag = document.createDocumentFragment();
    var end = Math.min(INCIDENTS.length, cardsShown + n);
    for (var i = cardsShown; i < end; i++) frag.appendChild(incidentCard(INCIDENTS[i], i));
    box.appendChild(frag); cardsShown = end;
    var rest = INCIDENTS.length - cardsShown;
    byId('inc-more').classList.toggle('hidden', rest <= 0);
    byId('inc-more').textContent = 'show ' + Math.min(CARD_PAGE, rest) + ' more incidents (' + rest + ' not shown)';
  }
  function renderIncidents() {
    byId('inc-count').textContent = '(' + INCIDENTS.length + ' from ' + ALERTS.length + ' alerts)';
    if (!INCIDENTS.length) { byId('incident-cards').appendChild(el('p', 'muted', 'No incidents.')); return; }
    byId('inc-more').addEventListener('click', function () { renderCards(CARD_PAGE); });
    renderCards(CARD_PAGE);
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
  renderIncidents();
  setupFilters();
  update();
  renderAudit();
  renderProblems();
  if (!ALERTS.length) byId('count').textContent = 'No alerts.';
  // An audit-only report has no hunt: its hunt sections would only show empty boxes.
  if (!DATA.summary) ['incidents', 'summary', 'timeline', 'alerts'].forEach(function (id) { byId(id).classList.add('hidden'); });
  window.svchuntTiming.readyMs = performance.now() - T0;
  window.svchuntTiming.sinceNavigationMs = performance.now();
  document.documentElement.setAttribute('data-ready', '1');
})();
