// photoedit serve: the page. Plain JS, no outside scripts (the server's CSP allows none).
'use strict';

const $ = (s) => document.querySelector(s);
const state = {
  info: null,
  photo: null,        // the upload's info from the server
  order: [],          // attribute names, top to bottom = the order edits apply
  strength: {},       // attribute -> slider value
  busy: false,        // a preview request is in flight
  again: false,       // the sliders moved while it was
  gan: null,
  ganBusy: false, ganAgain: false,
  folder: '',
};

async function api(path, options) {
  const r = await fetch(path, options);
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return r;
}

function say(el, text, isError) {
  el.textContent = text;
  el.classList.toggle('error', !!isError);
}

// ------------------------------------------------------------------ tabs

function showTab(name) {
  document.querySelectorAll('#tabs button').forEach((b) => b.classList.toggle('active', b.dataset.tab === name));
  document.querySelectorAll('.tab').forEach((t) => t.classList.toggle('active', t.id === `tab-${name}`));
  if (name === 'folder') { renderFolderEdits(); listFolder(state.folder); pollFolder(); }
  if (name === 'explorer' && state.gan) ganRender();
  if (name === 'dissect' && paint.info) paintRender();
}

// ------------------------------------------------------------------ photo editor

function edits() {
  return state.order.filter((n) => Number(state.strength[n]) !== 0).map((n) => [n, Number(state.strength[n])]);
}

function editsText(list) {
  return list.map(([a, s]) => `${a}:${s}`).join(',');
}

function renderSliders() {
  const box = $('#sliders');
  box.textContent = '';
  if (!state.order.length) {
    box.innerHTML = '<p class="hint">No translator is installed (see <code>photoedit list</code>).</p>';
    return;
  }
  state.order.forEach((name, i) => {
    const row = document.createElement('div');
    row.className = 'slider';
    const label = document.createElement('label');
    label.textContent = name;
    const about = state.info.attributes.find((a) => a.name === name) || {};
    label.title = `${about.source || ''}: ${about.description || ''}`;
    const input = document.createElement('input');
    Object.assign(input, { type: 'range', min: 0, max: 1, step: 0.01, value: state.strength[name] });
    input.dataset.attr = name;
    input.setAttribute('aria-label', `${name} strength`);
    const out = document.createElement('output');
    out.textContent = Number(state.strength[name]).toFixed(2);
    input.addEventListener('input', () => {
      state.strength[name] = Number(input.value);
      out.textContent = Number(input.value).toFixed(2);
      refresh();
    });
    const up = document.createElement('button');
    up.textContent = '\u2191'; up.title = 'apply earlier'; up.disabled = i === 0;
    up.addEventListener('click', () => move(i, -1));
    const down = document.createElement('button');
    down.textContent = '\u2193'; down.title = 'apply later'; down.disabled = i === state.order.length - 1;
    down.addEventListener('click', () => move(i, 1));
    row.append(label, input, out, up, down);
    box.append(row);
  });
}

function move(i, step) {
  const j = i + step;
  [state.order[i], state.order[j]] = [state.order[j], state.order[i]];
  renderSliders();
  refresh();
}

function previewSide() {
  const v = $('#viewer');
  const side = Math.round(Math.max(v.clientWidth, v.clientHeight) * (window.devicePixelRatio || 1));
  return Math.max(256, Math.min(side, state.info.limits.preview_max_side));
}

async function upload(file) {
  const status = $('#status');
  const limit = state.info.limits.max_upload_bytes;
  if (file.size > limit) {
    say(status, `${file.name}: larger than the upload limit of ${(limit / 2 ** 20).toFixed(0)} MB`, true);
    return;
  }
  say(status, `uploading ${file.name} ...`);
  try {
    const r = await api(`/api/photos?name=${encodeURIComponent(file.name)}`,
      { method: 'POST', body: file, headers: { 'Content-Type': 'application/octet-stream' } });
    state.photo = await r.json();
  } catch (e) {
    say(status, e.message, true);
    return;
  }
  const p = state.photo;
  $('#photo-info').textContent = `${p.name}: ${p.width} x ${p.height} ${p.format}` +
    (p.has_alpha ? ', alpha' : '') + (p.notes.length ? ` (${p.notes.join('; ')})` : '');
  $('#viewer').classList.remove('empty');
  await loadImage($('#before'), `/api/photos/${p.id}/original?side=${previewSide()}`);
  say(status, `${p.name} loaded`);
  refresh();
}

function loadImage(img, url) {
  return new Promise((resolve, reject) => {
    img.onload = () => resolve();
    img.onerror = () => reject(new Error('the browser could not show the image'));
    img.src = url;
  });
}

// Latest wins: while a preview is being made, slider moves only mark it stale; when it
// arrives, one more request carries the sliders' newest values.
async function refresh() {
  updateDownload();
  if (!state.photo) return;
  if (state.busy) { state.again = true; return; }
  state.busy = true;
  state.again = false;
  const list = edits();
  const t0 = performance.now();
  try {
    const r = await api(`/api/photos/${state.photo.id}/preview`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ edits: list, side: previewSide() }),
    });
    const url = URL.createObjectURL(await r.blob());
    const after = $('#after');
    const old = after.src;
    await loadImage(after, url);
    if (old.startsWith('blob:')) URL.revokeObjectURL(old);
    after.dataset.edits = editsText(list);
    const ms = performance.now() - t0;
    say($('#status'), list.length
      ? `preview of ${list.map(([a, s]) => `${a} ${s}`).join(' \u2192 ')}: ${ms.toFixed(0)} ms ` +
        `(edit ${(1000 * Number(r.headers.get('X-Edit-Seconds'))).toFixed(0)} ms)`
      : 'no edit: move a slider');
  } catch (e) {
    say($('#status'), e.message, true);
    if (e.status === 503) setTimeout(refresh, 400);  // busy: the newest values again, a little later
  } finally {
    state.busy = false;
    if (state.again) refresh();
  }
}

function updateDownload() {
  const a = $('#download');
  const list = edits();
  const ok = state.photo && list.length;
  a.classList.toggle('disabled', !ok);
  a.href = ok ? `/api/photos/${state.photo.id}/download?edits=${encodeURIComponent(editsText(list))}` : '#';
}

function setupEditor() {
  $('#file').addEventListener('change', (e) => { if (e.target.files[0]) upload(e.target.files[0]); });
  const viewer = $('#viewer');
  viewer.addEventListener('dragover', (e) => { e.preventDefault(); viewer.classList.add('dragging'); });
  viewer.addEventListener('dragleave', () => viewer.classList.remove('dragging'));
  viewer.addEventListener('drop', (e) => {
    e.preventDefault();
    viewer.classList.remove('dragging');
    if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
  });
  const split = $('#split');
  const applySplit = () => {
    $('#before').style.clipPath = `inset(0 ${100 - split.value}% 0 0)`;
    $('#split-line').style.left = `${split.value}%`;
  };
  split.addEventListener('input', applySplit);
  applySplit();
  state.order = state.info.attributes.map((a) => a.name);
  state.order.forEach((n) => { state.strength[n] = 0; });
  renderSliders();
  updateDownload();
}

// ------------------------------------------------------------------ folder mode

function renderFolderEdits() {
  const list = edits();
  $('#folder-edits').textContent = list.length ? list.map(([a, s]) => `${a} ${s}`).join(' \u2192 ') : 'none yet';
}

async function listFolder(path) {
  try {
    const r = await api(`/api/folders?path=${encodeURIComponent(path)}`);
    const d = await r.json();
    state.folder = d.folder;
    $('#folder-path').textContent = d.folder ? `${d.root}/${d.folder}` : d.root;
    const ul = $('#folder-list');
    ul.textContent = '';
    const items = (d.folder ? ['..'] : []).concat(d.subfolders);
    items.forEach((name) => {
      const li = document.createElement('li');
      li.textContent = name === '..' ? '\u2190 up' : `${name}/`;
      li.addEventListener('click', () => listFolder(name === '..' ? d.folder.split('/').slice(0, -1).join('/')
        : (d.folder ? `${d.folder}/${name}` : name)));
      ul.append(li);
    });
    $('#folder-count').textContent = `${d.images} images in this folder and below`;
  } catch (e) {
    say($('#folder-status'), e.message, true);
  }
}

async function startFolder() {
  try {
    await api('/api/folders/job', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ folder: state.folder, edits: edits() }),
    });
    pollFolder();
  } catch (e) {
    say($('#folder-status'), e.message, true);
  }
}

async function pollFolder() {
  let job;
  try {
    job = (await (await api('/api/folders/job')).json()).job;
  } catch (e) {
    say($('#folder-status'), e.message, true);
    return;
  }
  if (!job) return;
  const bar = $('#folder-progress');
  bar.max = Math.max(1, job.total);
  bar.value = job.done;
  const c = job.summary && job.summary.counts;
  say($('#folder-status'), job.error ? job.error : `${job.folder || 'the served folder'}: ${job.done} of ${job.total} written` +
    (job.resumed ? ` (${job.resumed} from an earlier run)` : '') + ` in ${job.seconds} s` +
    (c ? `; done ${c.done}, skipped ${c.skipped}, failed ${c.failed}` : '') + ` \u2192 ${job.out}`, !!job.error);
  const failed = job.summary ? job.summary.failed.map((f) => `failed: ${f.file}: ${f.reason}`) : [];
  const more = job.done > job.written.length ? [`... and ${job.done - job.written.length} more`] : [];
  $('#folder-summary').textContent = failed.concat(job.written, more).join('\n');
  if (job.running) setTimeout(pollFolder, 500);
}

// ------------------------------------------------------------------ GAN explorer

function ganSliders(box, names, lo, hi, step) {
  box.textContent = '';
  names.forEach(([direction, label]) => {
    const row = document.createElement('div');
    row.className = 'slider';
    const l = document.createElement('label');
    l.textContent = label;
    const input = document.createElement('input');
    Object.assign(input, { type: 'range', min: lo, max: hi, step, value: 0 });
    input.dataset.direction = direction;
    const out = document.createElement('output');
    out.textContent = '0.0';
    input.addEventListener('input', () => { out.textContent = Number(input.value).toFixed(1); ganRender(); });
    row.append(l, input, out);
    box.append(row);
  });
}

function ganRequest() {
  return {
    seed: Number($('#seed').value) || 0,
    psi: Number($('#psi').value),
    groups: [...document.querySelectorAll('#groups input:checked')].map((c) => c.value),
    edits: [...document.querySelectorAll('#tab-explorer input[data-direction]')]
      .map((i) => ({ direction: i.dataset.direction, strength: Number(i.value) }))
      .filter((e) => e.strength !== 0),
  };
}

async function ganRender() {
  if (state.ganBusy) { state.ganAgain = true; return; }
  state.ganBusy = true;
  state.ganAgain = false;
  const body = ganRequest();
  const t0 = performance.now();
  try {
    const r = await api('/api/gan/render', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body) });
    const img = $('#gan-img');
    const old = img.src;
    await loadImage(img, URL.createObjectURL(await r.blob()));
    if (old.startsWith('blob:')) URL.revokeObjectURL(old);
    img.dataset.edits = String(body.edits.length);  // what is shown: for tests and tools
    say($('#gan-status'), `seed ${body.seed}, truncation ${body.psi}: ${(performance.now() - t0).toFixed(0)} ms`);
  } catch (e) {
    say($('#gan-status'), e.message, true);
  } finally {
    state.ganBusy = false;
    if (state.ganAgain) ganRender();
  }
}

async function makePair() {
  const attribute = $('#pair-attribute').value;
  if (!attribute) return;
  const body = { seed: Number($('#seed').value) || 0, psi: Number($('#psi').value), attribute,
    strength: Number($('#pair-strength').value) };
  try {
    const d = await (await api('/api/gan/pair', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body) })).json();
    $('#pair-x').src = d.x;
    $('#pair-y').src = d.y;
    $('#pair-t').src = d.translated || '';
    $('#pair-t').hidden = !d.translated;
    $('#pair-t').title = d.translator || '';
    $('#pair-t-caption').textContent = d.translated ? `the translator on G(w), s = ${d.s.toFixed(2)}` +
      (Math.abs(d.s_asked - d.s) > 1e-6 ? ` (a / a_max = ${d.s_asked.toFixed(2)}: outside what it learnt)` : '')
      : 'no translator for this attribute';
    say($('#pair-status'), `the pair the pairs stage makes for seed ${body.seed}: a = ${d.a} on W+ layers ` +
      `[${d.layers.join(', ') || 'all'}] (the boundary's own layers, whatever the toggles say)`);
  } catch (e) {
    say($('#pair-status'), e.message, true);
  }
}

async function setupExplorer() {
  state.gan = await (await api('/api/gan/info')).json();
  const g = state.gan;
  const groups = $('#groups');
  Object.entries(g.groups).forEach(([name, rows]) => {
    const label = document.createElement('label');
    const box = document.createElement('input');
    Object.assign(box, { type: 'checkbox', value: name, checked: true });
    box.addEventListener('change', ganRender);
    label.append(box, ` ${name} (${rows.join(',')})`);
    groups.append(label);
  });
  ganSliders($('#boundary-sliders'), Object.keys(g.boundaries).map((n) => [`boundary:${n}`, n]), -5, 5, 0.1);
  ganSliders($('#sefa-sliders'), [...Array(g.sefa).keys()].map((k) => [`sefa:${k}`, `SeFa ${k}`]), -10, 10, 0.1);
  const select = $('#pair-attribute');
  Object.keys(g.boundaries).forEach((n) => select.append(new Option(n, n)));
  $('#seed').addEventListener('change', ganRender);
  $('#reseed').addEventListener('click', () => { $('#seed').value = Math.floor(Math.random() * 100000); ganRender(); });
  $('#psi').addEventListener('input', () => { $('#psi-value').textContent = Number($('#psi').value).toFixed(2); ganRender(); });
  $('#pair-strength').addEventListener('input', () => {
    $('#pair-strength-value').textContent = Number($('#pair-strength').value).toFixed(1);
  });
  $('#pair-make').addEventListener('click', makePair);
  $('#reset-directions').addEventListener('click', () => {
    document.querySelectorAll('#tab-explorer input[data-direction]').forEach((i) => {
      i.value = 0;
      i.nextSibling.textContent = '0.0';
    });
    ganRender();
  });
}

// ------------------------------------------------------------------ paint and dissect

const paint = {
  info: null,
  layout: null,       // Uint8Array H*W: class id per painted pixel, 255 = keep
  drawing: false,
  busy: false, again: false,
};

function paintSeed() { return Number($('#paint-seed').value) || 0; }

function paintOff() {
  return [...document.querySelectorAll('#unit-toggles input')].filter((c) => !c.checked).map((c) => c.value);
}

async function paintRender() {
  if (paint.busy) { paint.again = true; return; }
  paint.busy = true;
  paint.again = false;
  const body = { seed: paintSeed(), psi: 0.8, off: paintOff() };
  const t0 = performance.now();
  try {
    const r = await api('/api/paint/render', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body) });
    const img = $('#paint-img');
    const old = img.src;
    await loadImage(img, URL.createObjectURL(await r.blob()));
    if (old.startsWith('blob:')) URL.revokeObjectURL(old);
    img.dataset.off = body.off.join(',');  // what is shown: for tests and tools
    img.dataset.seed = String(body.seed);
    say($('#paint-status'), `seed ${body.seed}` + (body.off.length ? `, units off: ${body.off.join(', ')}` : '') +
      `: ${(performance.now() - t0).toFixed(0)} ms`);
    if ($('#paint-show-labels').checked) paintLabels();
  } catch (e) {
    say($('#paint-status'), e.message, true);
  } finally {
    paint.busy = false;
    if (paint.again) paintRender();
  }
}

async function paintLabels() {
  const el = $('#paint-labels');
  el.hidden = !$('#paint-show-labels').checked;
  if (el.hidden || !paint.info.sie) return;
  try {
    const r = await api('/api/paint/labels', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ seed: paintSeed(), psi: 0.8 }) });
    const old = el.src;
    await loadImage(el, URL.createObjectURL(await r.blob()));
    if (old.startsWith('blob:')) URL.revokeObjectURL(old);
  } catch (e) {
    say($('#paint-status'), e.message, true);
  }
}

function paintClear() {
  const [h, w] = paint.info.resolution;
  paint.layout = new Uint8Array(h * w).fill(255);
  const c = $('#paint-canvas');
  c.getContext('2d').clearRect(0, 0, c.width, c.height);
  c.dataset.painted = '0';
}

function paintAt(ev) {
  const c = $('#paint-canvas');
  const rect = c.getBoundingClientRect();
  const [h, w] = paint.info.resolution;
  const x = Math.floor((ev.clientX - rect.left) / rect.width * w);
  const y = Math.floor((ev.clientY - rect.top) / rect.height * h);
  const r = Number($('#paint-brush').value) / 2;
  const cls = Number($('#paint-class').value);
  const ctx = c.getContext('2d');
  const rgb = paint.info.classes.find((k) => k.id === cls).color;
  ctx.fillStyle = `rgba(${rgb[0]},${rgb[1]},${rgb[2]},0.6)`;
  let n = 0;
  for (let yy = Math.floor(y - r); yy <= y + r; yy++) {
    for (let xx = Math.floor(x - r); xx <= x + r; xx++) {
      if (yy < 0 || xx < 0 || yy >= h || xx >= w || (xx - x) ** 2 + (yy - y) ** 2 > r * r + 0.5) continue;
      if (paint.layout[yy * w + xx] !== cls) {
        paint.layout[yy * w + xx] = cls;
        ctx.clearRect(xx, yy, 1, 1);
        ctx.fillRect(xx, yy, 1, 1);
      }
      n++;
    }
  }
  if (n) c.dataset.painted = String(paint.layout.filter((v) => v !== 255).length);
}

function blobUrl(dataUrl) {
  const [head, b64] = dataUrl.split(',', 2);
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return URL.createObjectURL(new Blob([bytes], { type: head.slice(5).split(';')[0] }));
}

async function paintApply() {
  if (!paint.layout.some((v) => v !== 255)) { say($('#paint-status'), 'paint a class on the picture first', true); return; }
  const steps = Number($('#paint-steps').value);
  const seed = paintSeed();
  say($('#paint-status'), `semantic image editing: ${steps} steps...`);
  $('#paint-apply').disabled = true;
  const res = $('#paint-result');
  res.dataset.done = '0';
  try {
    const blend = $('#paint-blend').checked ? 'features' : 'none';
    const d = await (await api(`/api/paint/sie?seed=${seed}&psi=0.8&steps=${steps}&blend=${blend}`, {
      method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: paint.layout })).json();
    const old = res.src;
    await loadImage(res, blobUrl(d.image));  // a blob: URL, which the page's own fetch may read back
    if (old.startsWith('blob:')) URL.revokeObjectURL(old);
    res.dataset.done = '1';
    const pct = (v) => `${(100 * v).toFixed(0)}%`;
    say($('#paint-status'), `painted ${d.region_pixels} px: the extractor labels ${pct(d.region_fraction)} of them ` +
      `with the painted class (before: ${pct(d.region_fraction_before)}); PSNR outside the paint ` +
      `${d.psnr_outside === null ? 'inf' : d.psnr_outside.toFixed(1)} dB; ${d.steps} steps in ${d.seconds.toFixed(1)} s` +
      (d.blend === 'features' ? ' (feature blending)' : ''));
  } catch (e) {
    say($('#paint-status'), e.message, true);
  } finally {
    $('#paint-apply').disabled = false;
  }
}

async function setupPaint() {
  const info = paint.info = await (await api('/api/paint/info')).json();
  const [h, w] = info.resolution;
  const c = $('#paint-canvas');
  c.width = w;
  c.height = h;
  document.querySelectorAll('.paint-box').forEach((b) => { b.style.height = `${Math.round(384 * h / w)}px`; });
  const select = $('#paint-class');
  info.classes.forEach((k) => select.append(new Option(k.name, String(k.id))));
  const swatch = () => {
    const k = info.classes.find((x) => x.id === Number(select.value));
    if (k) $('#paint-swatch').style.background = `rgb(${k.color.join(',')})`;
  };
  select.addEventListener('change', swatch);
  swatch();
  const toggles = $('#unit-toggles');
  const names = Object.keys(info.units);
  if (!names.length) toggles.innerHTML = '<p class="hint">No dissection.json for this generator in the run (photoedit dissect).</p>';
  names.forEach((name) => {
    const u = info.units[name];
    const label = document.createElement('label');
    const box = document.createElement('input');
    Object.assign(box, { type: 'checkbox', value: name, checked: true });
    box.addEventListener('change', paintRender);
    label.append(box, ` ${name}: ${u.units.length} units of level ${u.level} (mean IoU ${u.iou.toFixed(3)})`);
    toggles.append(label);
  });
  if (!info.sie) {
    $('#paint-apply').disabled = true;
    say($('#paint-sie-note'), 'Painting needs the extractor of `photoedit lse` for this generator in the run folder.');
  }
  info.notes.forEach((n) => { const li = document.createElement('li'); li.textContent = n; li.className = 'error'; $('#dissect-files').append(li); });
  paintClear();
  c.addEventListener('pointerdown', (ev) => { paint.drawing = true; c.setPointerCapture(ev.pointerId); paintAt(ev); });
  c.addEventListener('pointermove', (ev) => { if (paint.drawing) paintAt(ev); });
  c.addEventListener('pointerup', () => { paint.drawing = false; });
  $('#paint-clear').addEventListener('click', paintClear);
  $('#paint-apply').addEventListener('click', paintApply);
  $('#paint-show-labels').addEventListener('change', paintLabels);
  $('#paint-seed').addEventListener('change', () => { paintClear(); paintRender(); });
  $('#paint-reseed').addEventListener('click', () => { $('#paint-seed').value = Math.floor(Math.random() * 100000); paintClear(); paintRender(); });
  $('#paint-brush').addEventListener('input', () => { $('#paint-brush-value').textContent = $('#paint-brush').value; });
  $('#paint-steps').addEventListener('input', () => { $('#paint-steps-value').textContent = $('#paint-steps').value; });
  $('#paint-steps').max = String(info.max_steps);
}

// ------------------------------------------------------------------ start

async function start() {
  try {
    state.info = await (await api('/api/info')).json();
  } catch (e) {
    say($('#status'), `cannot reach the server: ${e.message}`, true);
    return;
  }
  const info = state.info;
  $('#version').textContent = `photoedit ${info.version}` + (info.run ? ` \u00b7 run ${info.run}` : '');
  document.querySelectorAll('#tabs button').forEach((b) => b.addEventListener('click', () => showTab(b.dataset.tab)));
  setupEditor();
  if (info.folders) {
    $('#tabs [data-tab=folder]').hidden = false;
    $('#folder-start').addEventListener('click', startFolder);
  }
  if (info.explorer) {
    $('#tabs [data-tab=explorer]').hidden = false;
    await setupExplorer();
  }
  if (info.dissect.length) {
    $('#tabs [data-tab=dissect]').hidden = false;
    info.dissect.forEach((f) => { const li = document.createElement('li'); li.textContent = f; $('#dissect-files').append(li); });
    if (info.paint) await setupPaint();
    else say($('#paint-status'), 'Painting and unit toggles draw on the run\'s GAN: start the server with --run RUN_DIR ' +
      'holding gan/generator.safetensors.', true);
  }
  document.body.dataset.ready = '1';
}

start();
