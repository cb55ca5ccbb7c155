// layerd's dashboard: reads the node's /api endpoints every 2 s and redraws the tables in place.
// Every string from the node goes into the page as text (textContent, text nodes, attributes set one by
// one), never as markup: repository names and tags come from whoever pushed them.
'use strict';

(() => {
  const REFRESH_MS = 2000;
  const FETCH_TIMEOUT_MS = 5000;
  /** A node may hold thousands of blobs; the page lists the most recently used ones. */
  const MAX_BLOB_ROWS = 200;
  const SOURCES = ['local', 'peer', 'upstream'];

  // ---------- formatting ----------

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

  function humanSize(n) {
    if (!isNum(n)) return '—';
    if (n < 0) return `-${humanSize(-n)}`;
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    if (i === 0) return `${n} B`;
    return `${n >= 100 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
  }

  function percent(ratio) {
    if (!isNum(ratio)) return '—';
    return `${(ratio * 100).toFixed(1).replace(/\.0$/, '')}%`;
  }

  const count = (n) => (isNum(n) ? n.toLocaleString('en-US') : '—');

  function shortDigest(d) {
    if (typeof d !== 'string') return '—';
    const [alg, hex] = d.includes(':') ? d.split(':', 2) : ['', d];
    return alg ? `${alg}:${hex.slice(0, 12)}` : hex.slice(0, 12);
  }

  const pad = (n) => String(n).padStart(2, '0');

  function clock(iso) {
    const t = new Date(iso);
    if (Number.isNaN(t.getTime())) return '—';
    return `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
  }

  function ago(iso) {
    const t = new Date(iso).getTime();
    if (Number.isNaN(t)) return '—';
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return new Date(t).toISOString().slice(0, 10);
  }

  const isDigest = (ref) => typeof ref === 'string' && /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(ref);

  /** "registry/repository", with pushed content ("local") named by its repository alone. */
  function imageName(registry, repository) {
    const repo = String(repository ?? '?');
    return registry && registry !== 'local' ? `${registry}/${repo}` : repo;
  }

  // ---------- DOM, text only ----------

  const $ = (id) => document.getElementById(id);

  /** An element with text children; `attrs` are set one by one (data-*, title, class, ...). */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null) continue;
      if (k === 'className') node.className = v;
      else node.setAttribute(k, String(v));
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
    return node;
  }

  function setText(id, text) {
    const node = $(id);
    if (node) node.textContent = text;
  }

  function fill(tableId, rows, emptyText, columns) {
    const body = $(tableId)?.tBodies[0];
    if (!body) return;
    if (rows.length === 0) body.replaceChildren(el('tr', { className: 'empty' }, el('td', { colspan: columns }, emptyText)));
    else body.replaceChildren(...rows);
  }

  function showError(endpoint, message) {
    for (const note of document.querySelectorAll(`[data-error-for="${endpoint}"]`)) {
      note.hidden = message === undefined;
      note.textContent = message === undefined ? '' : message;
    }
  }

  function held(part, whole) {
    const ratio = isNum(part) && isNum(whole) && whole > 0 ? part / whole : undefined;
    return [el('meter', { min: 0, max: 1, value: ratio ?? 0 }), ` ${percent(ratio)}`];
  }

  // ---------- the sections ----------

  function renderStatus(s) {
    setText('node-url', s.url ?? '');
    setText('version', s.version ? `v${s.version}` : '');
    setText('peer-id', s.peerId ?? 'P2P off');
    const addrs = Array.isArray(s.multiaddrs) ? s.multiaddrs : [];
    $('multiaddrs').replaceChildren(...(addrs.length ? addrs.map((a) => el('li', {}, el('code', {}, a))) : [el('li', { className: 'muted' }, 'none')]));
    setText('upstreams', Array.isArray(s.upstreams) && s.upstreams.length ? s.upstreams.join(', ') : 'none');
    setText('default-registry', s.defaultRegistry ?? '—');
    renderStore(s.store);

    const stats = s.stats ?? {};
    renderCache(stats);
    renderPeers(s, stats);
  }

  function renderStore(store) {
    const dd = $('store');
    if (!store) return dd.replaceChildren('—');
    const parts = [`${humanSize(store.bytes)} in ${count(store.blobs)} blobs`];
    if (isNum(store.maxBytes)) parts.push(` of ${humanSize(store.maxBytes)} `, el('meter', { min: 0, max: 1, value: store.maxBytes > 0 ? store.bytes / store.maxBytes : 0 }));
    if (isNum(store.evictions) && store.evictions > 0) parts.push(` · ${count(store.evictions)} evicted`);
    dd.replaceChildren(...parts);
  }

  function renderCache(stats) {
    const served = stats.served ?? {};
    const total = SOURCES.reduce((sum, src) => sum + (isNum(served[src]) ? served[src] : 0), 0);
    // A node older than the ops API has no hitRatio: the same ratio from its served counters.
    const ratio = isNum(stats.hitRatio) ? stats.hitRatio : total > 0 ? (served.local ?? 0) / total : undefined;
    setText('hit-ratio', total > 0 || isNum(stats.hitRatio) ? percent(ratio) : '—');
    setText('bytes-saved', humanSize(stats.bytesSavedVsSeed));
    setText('served-total', count(stats.served ? total : undefined));

    const fetches = stats.fetches ?? {};
    const servedBytes = stats.servedBytes ?? {};
    fill(
      'sources',
      SOURCES.map((src) =>
        el(
          'tr',
          { 'data-source': src },
          el('td', {}, src),
          el('td', { className: 'num', 'data-field': 'fetched' }, src === 'local' ? '—' : count(fetches[src]?.count)),
          el('td', { className: 'num' }, src === 'local' ? '—' : humanSize(fetches[src]?.bytes)),
          el('td', { className: 'num', 'data-field': 'served' }, count(served[src])),
          el('td', { className: 'num' }, humanSize(servedBytes[src])),
        ),
      ),
      '',
      5,
    );
  }

  function renderPeers(s, stats) {
    setText('connected-peers', count(s.connectedPeers));
    setText('uploaded-to-peers', humanSize(stats.uploadedToPeers));
    const peers = Array.isArray(s.peers) ? s.peers : [];
    fill(
      'peers',
      peers.map((p) =>
        el(
          'tr',
          { 'data-peer-id': p.id },
          el('td', {}, el('code', { title: p.id }, p.id ?? '?')),
          el('td', {}, ...(Array.isArray(p.addrs) ? p.addrs : []).flatMap((a, i) => (i ? [el('br'), el('code', {}, a)] : [el('code', {}, a)]))),
          el('td', { className: 'num' }, humanSize(p.uploaded)),
          el('td', { className: 'num' }, humanSize(p.downloaded)),
        ),
      ),
      Array.isArray(s.peers) ? 'no peers connected' : 'this node does not report its peers',
      4,
    );
  }

  function renderImages(body) {
    const images = Array.isArray(body.images) ? body.images : [];
    setText('image-count', count(images.length));
    fill(
      'images',
      images.map((img) => {
        const tags = Array.isArray(img.tags) ? img.tags : [];
        return el(
          'tr',
          { 'data-registry': img.registry, 'data-repository': img.repository, 'data-tags': tags.join(','), 'data-digest': img.digest },
          el('td', {}, imageName(img.registry, img.repository)),
          el('td', { className: 'tags' }, ...tags.map((t) => el('span', { className: 'tag' }, t)), tags.length ? '' : el('span', { className: 'muted' }, 'untagged')),
          el('td', {}, el('code', { title: img.digest }, shortDigest(img.digest))),
          el('td', { className: 'num' }, humanSize(img.size)),
          el('td', { className: 'held' }, ...held(img.heldBytes, img.size), ` · ${count(img.heldBlobs)}/${count(img.blobs)} blobs`),
        );
      }),
      'no images yet',
      5,
    );
  }

  function renderBlobs(body) {
    const blobs = Array.isArray(body.blobs) ? body.blobs : [];
    setText('blob-count', count(blobs.length));
    fill(
      'blobs',
      blobs.slice(0, MAX_BLOB_ROWS).map((b) =>
        el(
          'tr',
          { 'data-digest': b.digest, 'data-source': b.source },
          el('td', {}, el('code', { title: b.digest }, shortDigest(b.digest))),
          el('td', { className: 'num' }, humanSize(b.size)),
          el('td', {}, el('span', { className: `source ${String(b.source)}` }, b.source ?? '?')),
          el('td', { title: b.lastAccess ?? '' }, ago(b.lastAccess)),
        ),
      ),
      'no blobs yet',
      4,
    );
    const more = $('blobs-more');
    more.hidden = blobs.length <= MAX_BLOB_ROWS;
    more.textContent = more.hidden ? '' : `Showing the ${MAX_BLOB_ROWS} most recently used of ${count(blobs.length)} blobs.`;
  }

  function renderPulls(body) {
    const pulls = Array.isArray(body.pulls) ? body.pulls : [];
    fill(
      'pulls',
      pulls.map((p) => {
        const ref = isDigest(p.reference) ? `@${shortDigest(p.reference)}` : `:${p.reference ?? '?'}`;
        return el(
          'tr',
          { 'data-repository': p.repository, 'data-kind': p.kind, 'data-source': p.source, 'data-reference': p.reference },
          el('td', { title: p.at ?? '' }, clock(p.at)),
          el('td', {}, p.kind ?? '?'),
          el('td', { title: p.digest ?? '' }, imageName(p.registry, p.repository) + ref),
          el('td', { className: 'num' }, humanSize(p.size)),
          el('td', {}, el('span', { className: `source ${String(p.source)}` }, p.source ?? '?')),
        );
      }),
      'no pulls yet',
      5,
    );
  }

  function renderRollouts(body) {
    const rollouts = Array.isArray(body.rollouts) ? body.rollouts : [];
    setText('rollout-count', count(rollouts.length));
    fill(
      'rollouts',
      rollouts.slice(0, 20).map((r) => {
        const s = r.summary ?? {};
        const ratio = typeof s.seedRatio === 'number' ? ` (${s.seedRatio.toFixed(2)}× the image)` : '';
        return el(
          'tr',
          { 'data-rollout': r.id, 'data-image': r.image, 'data-state': r.state },
          el('td', { title: r.id ?? '' }, clock(typeof r.createdAt === 'number' ? new Date(r.createdAt).toISOString() : undefined)),
          el('td', {}, r.image ?? '?'),
          el('td', {}, el('span', { className: `state ${String(r.state)}` }, r.state ?? '?'), s.dead ? ` · ${count(s.dead)} dead` : '', s.failed ? ` · ${count(s.failed)} failed` : ''),
          el('td', { className: 'num' }, `${count(s.done)}/${count(s.nodes)}`),
          el('td', { className: 'num' }, humanSize(s.seedBytes) + ratio),
          el('td', { className: 'num' }, typeof s.makespanMs === 'number' ? `${(s.makespanMs / 1000).toFixed(1)} s` : '—'),
        );
      }),
      'no rollouts yet',
      6,
    );
  }

  // ---------- the loop ----------

  const ENDPOINTS = { status: renderStatus, images: renderImages, blobs: renderBlobs, pulls: renderPulls, rollouts: renderRollouts };

  /** The JSON of /api/<name>, or an Error saying what went wrong (an OCI error body's message, if any). */
  async function getJson(name) {
    const res = await fetch(`/api/${name}`, { cache: 'no-store', headers: { accept: 'application/json' }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    const text = await res.text();
    if (!res.ok) {
      let message = text.slice(0, 200);
      try {
        message = JSON.parse(text).errors?.[0]?.message ?? message;
      } catch {
        // not JSON: keep the start of the body
      }
      throw new Error(`${res.status} ${message}`.trim());
    }
    return JSON.parse(text);
  }

  async function refresh() {
    const names = Object.keys(ENDPOINTS);
    const results = await Promise.allSettled(names.map(getJson));
    let failed = 0;
    names.forEach((name, i) => {
      const r = results[i];
      try {
        if (r.status === 'rejected') throw r.reason;
        ENDPOINTS[name](r.value);
        showError(name, undefined);
      } catch (err) {
        // One broken endpoint leaves the others drawn; its section keeps the last data it had.
        failed++;
        showError(name, `Could not load /api/${name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    const updated = $('updated');
    updated.textContent = `updated ${clock(new Date().toISOString())}${failed ? ` · ${failed} endpoint(s) failing` : ''}`;
    updated.classList.toggle('failing', failed > 0);
  }

  // The next round starts 2 s after the last one ended, so a slow node is never asked twice at once.
  async function loop() {
    try {
      await refresh();
    } finally {
      setTimeout(loop, REFRESH_MS);
    }
  }

  loop();
})();
