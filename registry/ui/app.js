'use strict';
// artifactstore's web UI: read-only pages over the registry's own APIs
// (/api/v1/ and /v2/). Every value from the server is put in the page as
// text (h() below: textContent and attributes, never markup), so names,
// annotations and manifests pushed by clients cannot inject anything.
//
// Pages are hash routes, so that every view has a URL and the server
// serves one static page:
//   #/                          repositories
//   #/repo/NAME                 a repository's versions and tags
//   #/artifact/NAME/-/REF       a manifest, by tag, version or digest
//   #/history/NAME/-/TAG        every change of a tag, from the event log
//   #/events?repository=&type=  the live event stream

const main = document.getElementById('main');
const authKey = 'artifactstore.credentials';
let live = null; // the AbortController of the event stream, while its page shows

// h makes an element: attributes (on* are listeners), then children
// (strings become text nodes; null and false are skipped).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// ---- talking to the server ----

class HTTPError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers);
  const creds = sessionStorage.getItem(authKey);
  if (creds) headers.Authorization = 'Basic ' + creds;
  const resp = await fetch(path, Object.assign({}, opts, { headers }));
  if (resp.status === 401) {
    document.getElementById('signin').hidden = false;
    throw new HTTPError(401, 'This registry needs credentials: use "Sign in" above.');
  }
  if (!resp.ok) {
    let msg = `${resp.status} ${resp.statusText}`;
    try {
      const body = await resp.json();
      if (body.errors && body.errors[0]) msg = body.errors[0].message;
    } catch (e) { /* not the spec's error body */ }
    throw new HTTPError(resp.status, msg);
  }
  return resp;
}

const getJSON = async (path, opts) => (await api(path, opts)).json();

// Every manifest type a page may show, for /v2/ GETs.
const manifestTypes = [
  'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

const enc = (name) => name.split('/').map(encodeURIComponent).join('/');
const repoAPI = (name) => `/api/v1/repositories/${enc(name)}/-`;
const isDigest = (ref) => /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(ref);

// ---- small pieces of pages ----

function bytes(n) {
  if (n === undefined || n === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
}

function when(iso) {
  if (!iso) return '';
  const t = new Date(iso);
  const s = (Date.now() - t.getTime()) / 1000;
  let rel;
  if (s < 60) rel = 'just now';
  else if (s < 3600) rel = Math.floor(s / 60) + ' min ago';
  else if (s < 86400) rel = Math.floor(s / 3600) + ' h ago';
  else rel = Math.floor(s / 86400) + ' days ago';
  return h('time', { datetime: t.toISOString(), title: t.toISOString() }, rel);
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  const ta = h('textarea', { 'aria-hidden': 'true', class: 'offscreen' }, text);
  document.body.append(ta);
  ta.select();
  document.execCommand('copy');
  ta.remove();
}

function copyButton(text, label) {
  const b = h('button', { type: 'button', class: 'copy', 'aria-label': 'Copy ' + (label || text) }, 'Copy');
  b.addEventListener('click', async () => {
    try { await copyText(text); b.textContent = 'Copied'; } catch (e) { b.textContent = 'Select and copy'; }
    setTimeout(() => { b.textContent = 'Copy'; }, 1500);
  });
  return b;
}

const digestCell = (d, label) => d ? [h('span', { class: 'digest' }, d), copyButton(d, label || d)] : '';

function table(headers, rows, cls) {
  return h('div', { class: 'scroll' }, h('table', { class: cls || null },
    h('thead', {}, h('tr', {}, headers.map((x) => typeof x === 'string' ? h('th', { scope: 'col' }, x) : x))),
    h('tbody', {}, rows)));
}

function crumbs(...parts) {
  const out = [h('a', { href: '#/' }, 'Repositories')];
  for (const p of parts) out.push(' / ', p);
  return h('div', { class: 'crumbs' }, out);
}

function show(...children) {
  main.replaceChildren(...children.flat(Infinity).filter(Boolean));
}

function showError(e) {
  show(h('h1', {}, 'Not available'), h('p', { class: 'error', role: 'alert' }, e.message || String(e)));
}

// ---- the pages ----

async function reposPage(params) {
  show(h('h1', {}, 'Repositories'), h('p', { class: 'muted' }, 'Loading…'));
  const [storage, found] = await Promise.all([
    getJSON('/api/v1/storage').catch(() => ({ repositories: [] })),
    getJSON('/api/v1/search?n=1000'),
  ]);
  const repos = new Map();
  const repo = (name) => {
    if (!repos.has(name)) repos.set(name, { name, bytes: null, tags: 0, native: 0, updated: '', seq: 0, versions: [] });
    return repos.get(name);
  };
  for (const r of storage.repositories || []) repo(r.repository).bytes = r.bytes;
  for (const v of found.versions || []) {
    const r = repo(v.repository);
    if (v.native) r.native++; else r.tags++;
    r.versions.push(v.version);
    if (v.sequence > r.seq) { r.seq = v.sequence; r.updated = v.tagged; }
  }
  const all = [...repos.values()].sort((a, b) => (b.seq - a.seq) || a.name.localeCompare(b.name));
  const search = h('input', { type: 'search', id: 'search', placeholder: 'name or version', value: params.get('q') || '', 'aria-describedby': 'search-hint' });
  const body = h('tbody', {});
  const count = h('p', { class: 'muted', id: 'search-hint' });
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const shown = all.filter((r) => !q || r.name.toLowerCase().includes(q) || r.versions.some((v) => v.toLowerCase().includes(q)));
    body.replaceChildren(...shown.map((r) => h('tr', {},
      h('td', {}, h('a', { href: '#/repo/' + r.name }, r.name)),
      h('td', { class: 'num' }, r.bytes === null ? '' : bytes(r.bytes)),
      h('td', { class: 'num' }, r.tags),
      h('td', { class: 'num' }, r.native),
      h('td', { class: 'wide' }, when(r.updated)))));
    count.textContent = `${shown.length} of ${all.length} repositories, most recently changed first. Press / to search.`;
  };
  search.addEventListener('input', render);
  render();
  show(h('h1', {}, 'Repositories'),
    h('div', { class: 'toolbar' }, h('label', {}, 'Search', search)), count,
    h('div', { class: 'scroll' }, h('table', { id: 'repos' },
      h('thead', {}, h('tr', {}, ['Repository', 'Size', 'Tags', 'Native versions'].map((x) => h('th', { scope: 'col' }, x)), h('th', { scope: 'col', class: 'wide' }, 'Updated'))),
      body)));
}

async function repoPage(name) {
  const data = await getJSON(`${repoAPI(name)}/versions?n=1000`);
  const rows = (data.versions || []).map((v) => h('tr', {},
    h('td', {}, h('a', { href: `#/artifact/${name}/-/${v.version}` }, v.version), v.native ? h('span', { class: 'badge' }, 'native') : null),
    h('td', { class: 'wide' }, h('span', { class: 'digest' }, v.digest)),
    h('td', { class: 'wide' }, v.artifactType || v.mediaType),
    h('td', {}, when(v.tagged)),
    h('td', {}, h('a', { href: `#/history/${name}/-/${v.version}`, 'aria-label': `History of ${v.version}` }, 'history'))));
  show(crumbs(), h('h1', {}, name),
    h('p', { class: 'muted' }, `${rows.length} versions and tags, newest first. `, h('a', { href: `#/history/${name}/-/` }, 'Every change in this repository'), '.'),
    rows.length ? table(['Version or tag', h('th', { scope: 'col', class: 'wide' }, 'Digest'), h('th', { scope: 'col', class: 'wide' }, 'Type'), 'Tagged', ''], rows, 'versions')
      : h('p', {}, 'No tags or versions.'));
}

// blobDigests reads both digests of a blob the repository holds, from the
// Repr-Digest of a HEAD on the native blob route.
async function blobDigests(name, digest) {
  const resp = await api(`${repoAPI(name)}/blobs/${digest}`, { method: 'HEAD' });
  const out = { sha256: digest };
  for (const part of (resp.headers.get('Repr-Digest') || '').split(',')) {
    const m = part.trim().match(/^([a-z0-9-]+)=:([A-Za-z0-9+/=]+):$/);
    if (m && m[1] === 'blake3') out.blake3 = 'blake3:' + [...atob(m[2])].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
  }
  return out;
}

function hexdump(buf) {
  const b = new Uint8Array(buf);
  const lines = [];
  for (let i = 0; i < b.length; i += 16) {
    lines.push(i.toString(16).padStart(6, '0') + '  ' + [...b.slice(i, i + 16)].map((x) => x.toString(16).padStart(2, '0')).join(' '));
  }
  return lines.join('\n');
}

async function referrersTree(name, digest, depth) {
  if (depth > 3) return null;
  let idx;
  try { idx = await getJSON(`/v2/${enc(name)}/referrers/${digest}`); } catch (e) { return null; }
  const ms = idx.manifests || [];
  if (!ms.length) return null;
  const items = await Promise.all(ms.map(async (m) => h('li', {},
    h('a', { href: `#/artifact/${name}/-/${m.digest}` }, m.artifactType || m.mediaType),
    ' ', h('span', { class: 'digest muted' }, m.digest),
    await referrersTree(name, m.digest, depth + 1))));
  return h('ul', { class: 'tree' }, items);
}

function commands(name, ref, digest, native, files) {
  const host = location.host;
  const plain = location.protocol === 'http:';
  const at = isDigest(ref) ? '@' + ref : ':' + ref;
  const lines = [
    `oras pull ${plain ? '--plain-http ' : ''}${host}/${name}${at}`,
    `crane manifest ${plain ? '--insecure ' : ''}${host}/${name}@${digest}`,
    `curl -H 'Accept: ${manifestTypes}' ${location.origin}/v2/${name}/manifests/${digest}`,
  ];
  if (native) lines.push(`artifactstore pull --server ${location.origin} ${name}:${ref}`);
  if (files.length && !isDigest(ref)) {
    for (const f of files.slice(0, 5)) lines.push(`curl -O ${location.origin}${repoAPI(name)}/versions/${encodeURIComponent(ref)}/files/${enc(f.path)}`);
  }
  return lines.map((l) => h('div', { class: 'cmd' }, h('pre', {}, l), copyButton(l, 'command')));
}

async function artifactPage(name, ref) {
  const resp = await api(`/v2/${enc(name)}/manifests/${encodeURIComponent(ref)}`, { headers: { Accept: manifestTypes } });
  const digest = resp.headers.get('Docker-Content-Digest');
  const mediaType = resp.headers.get('Content-Type');
  const text = await resp.text();
  const m = JSON.parse(text);
  // Every tag has a native view (JCS and CBOR): a version published
  // through /api/v1/ its own manifest, a tag pushed over /v2/ one derived
  // from the OCI manifest. The versions list says which.
  let view = null;
  let native = false;
  let files = [];
  if (!isDigest(ref)) {
    try {
      const v = await api(`${repoAPI(name)}/versions/${encodeURIComponent(ref)}`);
      view = { jcs: await v.text(), digest: v.headers.get('Native-Digest') };
      files = (await getJSON(`${repoAPI(name)}/versions/${encodeURIComponent(ref)}/files`)).files || [];
      const list = await getJSON(`${repoAPI(name)}/versions?n=1000`);
      native = (list.versions || []).some((x) => x.version === ref && x.native);
    } catch (e) { /* no native view */ }
  }

  const descs = [];
  if (m.config) descs.push(['config', m.config]);
  for (const l of m.layers || []) descs.push(['layer', l]);
  for (const c of m.manifests || []) descs.push(['manifest', c]);
  if (m.subject) descs.push(['subject', m.subject]);
  const blobRows = await Promise.all(descs.slice(0, 100).map(async ([role, d]) => {
    let ds = { sha256: d.digest };
    if (role === 'config' || role === 'layer') ds = await blobDigests(name, d.digest).catch(() => ds);
    const target = role === 'manifest' || role === 'subject' ? h('a', { href: `#/artifact/${name}/-/${d.digest}` }, role) : role;
    return h('tr', {}, h('td', {}, target, d.annotations && d.annotations['org.opencontainers.image.title'] ? h('div', { class: 'muted' }, d.annotations['org.opencontainers.image.title']) : null),
      h('td', { class: 'num' }, bytes(d.size)),
      h('td', {}, h('div', {}, digestCell(ds.sha256, 'SHA-256')), ds.blake3 ? h('div', {}, digestCell(ds.blake3, 'BLAKE3')) : null),
      h('td', { class: 'wide' }, d.mediaType));
  }));
  const tree = await referrersTree(name, digest, 1);

  const sections = [
    crumbs(h('a', { href: '#/repo/' + name }, name)),
    h('h1', {}, `${name}${isDigest(ref) ? '@' : ':'}${ref}`),
    h('p', {}, h('span', { class: 'digest' }, digest), copyButton(digest, 'manifest digest'), ' ', h('span', { class: 'badge' }, m.artifactType || (m.config && m.config.mediaType) || mediaType),
      native ? h('span', { class: 'badge' }, 'native') : null,
      isDigest(ref) ? null : [' ', h('a', { href: `#/history/${name}/-/${ref}` }, 'history of this tag')]),
    h('h2', {}, 'Pull it'), commands(name, ref, digest, native, files),
  ];
  if (files.length) {
    sections.push(h('h2', {}, 'Files'), table(['Path', 'Size', 'Digests'], files.map((f) => h('tr', {},
      h('td', {}, h('a', { href: `${repoAPI(name)}/versions/${encodeURIComponent(ref)}/files/${enc(f.path)}`, download: f.path.split('/').pop() }, f.path)),
      h('td', { class: 'num' }, bytes(f.size)),
      h('td', {}, h('div', {}, digestCell(f.sha256, 'SHA-256 of ' + f.path)), h('div', {}, digestCell(f.blake3, 'BLAKE3 of ' + f.path))))), 'files'));
  }
  sections.push(h('h2', {}, 'Blobs'), descs.length ? table(['Role', 'Size', 'Digests', h('th', { scope: 'col', class: 'wide' }, 'Media type')], blobRows, 'blobs') : h('p', {}, 'None.'));
  sections.push(h('h2', {}, 'Referrers'), tree || h('p', { class: 'muted' }, 'No signatures, SBOMs or other artifacts refer to this manifest.'));
  sections.push(h('h2', {}, 'Manifest'), h('pre', { id: 'manifest' }, JSON.stringify(m, null, 2)));
  if (view) {
    sections.push(h('h2', {}, native ? 'Native manifest (JCS)' : 'Native view, derived from the OCI manifest (JCS)'),
      h('p', {}, 'Native digest (SHA-256 of the CBOR): ', digestCell(view.digest, 'native digest')), h('pre', { id: 'jcs' }, view.jcs));
    const cbor = h('pre', { id: 'cbor' }, 'Loading…');
    sections.push(h('h2', {}, native ? 'Native manifest (canonical CBOR, as hashed)' : 'Native view (canonical CBOR)'), cbor);
    api(`${repoAPI(name)}/versions/${encodeURIComponent(ref)}`, { headers: { Accept: 'application/cbor' } })
      .then((r) => r.arrayBuffer()).then((b) => { cbor.textContent = `${b.byteLength} bytes\n` + hexdump(b); })
      .catch((e) => { cbor.textContent = e.message; });
  }
  show(sections);
}

async function historyPage(name, tag) {
  const q = new URLSearchParams({ repository: name });
  if (tag) q.set('tag', tag);
  const data = await getJSON('/api/v1/history?' + q);
  const changes = (data.changes || []).slice().reverse();
  const rows = changes.map((c) => h('tr', {},
    h('td', {}, when(c.time)),
    tag ? null : h('td', {}, c.tag),
    h('td', {}, c.event),
    h('td', {}, c.digest ? h('a', { class: 'digest', href: `#/artifact/${name}/-/${c.digest}` }, c.digest) : ''),
    h('td', {}, c.actor ? `${c.actor.name} (${c.actor.method}${c.actor.addr ? ', ' + c.actor.addr : ''})` : ''),
    h('td', { class: 'num wide' }, c.seq)));
  show(crumbs(h('a', { href: '#/repo/' + name }, name)),
    h('h1', {}, tag ? `History of ${name}:${tag}` : `History of ${name}`),
    h('p', { class: 'muted' }, 'Every change, newest first, as the event log recorded it.'),
    rows.length ? table(['When', tag ? null : 'Tag', 'Change', 'Digest', 'By', h('th', { scope: 'col', class: 'wide' }, 'Event')].filter(Boolean), rows, 'history') : h('p', {}, 'No changes recorded.'));
}

const eventTypes = ['blob.committed', 'blob.linked', 'blob.unlinked', 'blob.tiered', 'manifest.put', 'manifest.deleted', 'manifest.pulled',
  'tag.set', 'tag.deleted', 'version.published', 'version.deleted', 'upload.started', 'upload.finished', 'upload.cancelled',
  'apikey.created', 'apikey.revoked', 'gc.condemned', 'gc.swept', 'retention.policy.set', 'retention.policy.removed', 'retention.purged'];

// eventsPage follows /api/v1/events live. The stream's ids are sequence
// numbers: after a drop it reconnects with Last-Event-ID, and an event at
// or before the last shown is never shown twice.
function eventsPage(params) {
  const repo = h('input', { name: 'repository', value: params.get('repository') || '', placeholder: 'all', autocomplete: 'off' });
  const type = h('input', { name: 'type', value: params.get('type') || '', placeholder: 'all, or a,b', list: 'event-types', autocomplete: 'off' });
  const form = h('form', { class: 'toolbar', role: 'search' },
    h('label', {}, 'Repository', repo), h('label', {}, 'Types', type),
    h('datalist', { id: 'event-types' }, eventTypes.map((t) => h('option', { value: t }))),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (repo.value.trim()) q.set('repository', repo.value.trim());
    if (type.value.trim()) q.set('type', type.value.trim());
    location.hash = '#/events' + (q.toString() ? '?' + q : '');
  });
  const status = h('p', { class: 'status', role: 'status', id: 'stream-status' }, 'Connecting…');
  const body = h('tbody', { id: 'events-body' });
  show(h('h1', {}, 'Live events'), form, status,
    h('div', { class: 'scroll' }, h('table', { class: 'events', id: 'events' },
      h('thead', {}, h('tr', {}, ['Seq', 'When', 'Type', 'Repository', 'What', 'By'].map((x) => h('th', { scope: 'col' }, x)))), body)));

  const q = new URLSearchParams();
  if (params.get('repository')) q.set('repository', params.get('repository'));
  if (params.get('type')) q.set('type', params.get('type'));
  const ctl = new AbortController();
  live = ctl;
  let last = null;
  let shown = 0;
  const row = (ev) => {
    const p = ev.payload || {};
    const what = p.tag ? `${p.tag} → ${p.digest || ''}` : p.version ? p.version : p.digest || p.sha256 || p.id || '';
    const repoCell = ev.repository ? h('a', { href: '#/repo/' + ev.repository }, ev.repository) : '';
    return h('tr', { 'data-seq': ev.seq }, h('td', { class: 'num' }, ev.seq), h('td', {}, when(ev.time)), h('td', {}, ev.type),
      h('td', {}, repoCell), h('td', {}, h('span', { class: 'digest' }, what)), h('td', {}, ev.actor ? ev.actor.name : ''));
  };
  const add = (ev) => {
    const tr = row(ev);
    tr.className = 'new';
    body.prepend(tr);
    if (++shown > 500) body.lastChild.remove();
  };
  // The recent events first: a page read up to the log's head (which
  // every page names); the stream then follows from the last event shown,
  // so nothing committed in between is missed or shown twice.
  const backlog = async () => {
    const head = (await getJSON('/api/v1/events?limit=1')).head;
    const p = new URLSearchParams(q);
    p.set('after', String(Math.max(0, head - 50)));
    p.set('limit', '100');
    const page = await getJSON('/api/v1/events?' + p);
    for (const ev of (page.events || []).reverse()) {
      body.append(row(ev));
      shown++;
    }
    // Where the page stopped: the head, or earlier when the page ended at
    // its size bound; the stream goes on from there, so nothing between
    // is skipped.
    last = page.next;
  };
  (async () => {
    let retry = 2000;
    try { await backlog(); } catch (e) { /* the stream alone, from its start */ }
    while (!ctl.signal.aborted) {
      try {
        const headers = { Accept: 'text/event-stream' };
        if (last !== null) headers['Last-Event-ID'] = String(last);
        const resp = await api('/api/v1/events' + (q.toString() ? '?' + q : ''), { headers, signal: ctl.signal });
        status.className = 'status live';
        status.textContent = 'Live: new events appear at the top.';
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let id = null;
            let data = '';
            for (const line of block.split('\n')) {
              const [field, ...rest] = line.split(':');
              const val = rest.join(':').replace(/^ /, '');
              if (field === 'id') id = val;
              else if (field === 'data') data += (data ? '\n' : '') + val;
              else if (field === 'retry' && /^\d+$/.test(val)) retry = Number(val);
            }
            if (id === null || !data) continue; // anchors and comments carry no event id
            const seq = Number(id);
            if (last !== null && seq <= last) continue;
            last = seq;
            add(JSON.parse(data));
          }
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
        if (e.status && e.status < 500 && e.status !== 429) {
          status.className = 'status down';
          status.textContent = e.message;
          return;
        }
      }
      if (ctl.signal.aborted) return;
      status.className = 'status down';
      status.textContent = 'Disconnected; reconnecting…';
      await new Promise((r) => setTimeout(r, retry));
    }
  })();
}

// A repository name as the registry's grammar has it: a crafted link must
// not make the browser send the user's credentials to other paths.
const validName = (n) => /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/.test(n) && n.length <= 255;

// ---- routing ----

async function route() {
  if (live) { live.abort(); live = null; }
  const hash = decodeURIComponent(location.hash.slice(1) || '/');
  const [path, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  const section = path.startsWith('/events') ? 'events' : 'repos';
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  let m;
  try {
    if (path === '/' || path === '') {
      document.title = 'Repositories · artifactstore';
      await reposPage(params);
    } else if ((m = path.match(/^\/(?:repo|artifact|history)\/(.+?)(?:\/-\/.*)?$/)) && !validName(m[1])) {
      show(h('h1', {}, 'No such repository'), h('p', {}, `"${m[1]}" is not a repository name.`));
    } else if ((m = path.match(/^\/repo\/(.+)$/))) {
      document.title = m[1] + ' · artifactstore';
      await repoPage(m[1]);
    } else if ((m = path.match(/^\/artifact\/(.+?)\/-\/(.+)$/))) {
      document.title = `${m[1]}:${m[2]} · artifactstore`;
      await artifactPage(m[1], m[2]);
    } else if ((m = path.match(/^\/history\/(.+?)\/-\/(.*)$/))) {
      document.title = `History of ${m[1]} · artifactstore`;
      await historyPage(m[1], m[2]);
    } else if (path === '/events') {
      document.title = 'Live events · artifactstore';
      eventsPage(params);
    } else {
      show(h('h1', {}, 'No such page'), h('p', {}, h('a', { href: '#/' }, 'Repositories')));
    }
  } catch (e) {
    showError(e);
  }
  main.focus({ preventScroll: true });
}

document.addEventListener('keydown', (e) => {
  const search = document.getElementById('search');
  if (e.key === '/' && search && document.activeElement !== search && !(e.target instanceof HTMLInputElement)) {
    e.preventDefault();
    search.focus();
  }
});

// whoami asks whether this registry wants credentials (with
// authentication on, lists and searches answer an anonymous caller with
// nothing rather than 401) and sets the sign-in button accordingly.
async function whoami() {
  const button = document.getElementById('signin');
  const creds = sessionStorage.getItem(authKey);
  const resp = await fetch('/api/v1/whoami', { headers: creds ? { Authorization: 'Basic ' + creds } : {} });
  if (resp.status === 401) {
    sessionStorage.removeItem(authKey); // refused: ask again
    button.textContent = 'Sign in (refused, try again)';
    button.hidden = false;
    return;
  }
  const me = await resp.json();
  button.textContent = me.method === 'anonymous' ? 'Sign in' : 'Sign out ' + me.name;
  button.hidden = !me.authentication;
}

document.getElementById('signin').addEventListener('click', () => {
  if (sessionStorage.getItem(authKey)) {
    sessionStorage.removeItem(authKey);
    whoami().then(route);
    return;
  }
  document.getElementById('login').showModal();
});
document.getElementById('login-form').addEventListener('submit', (e) => {
  if (e.submitter && e.submitter.value === 'cancel') return;
  const f = e.target;
  sessionStorage.setItem(authKey, btoa(unescape(encodeURIComponent(f.user.value + ':' + f.password.value))));
  f.password.value = '';
  whoami().then(route);
});
window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (e) => { e.preventDefault(); showError(e.reason); });
whoami().catch(() => {}).then(route);
