// The status page: queue and history live over socket.io; workflow files are queued through
// POST /workflow/import?queue=true, so the browser never parses (and rounds) a 64-bit seed.
/* global io, document, sessionStorage, URLSearchParams, Blob */
const $ = (id) => document.getElementById(id);
const socket = io({ auth: { clientId: sessionStorage.getItem('loragraph.clientId') ?? undefined } });
let clientId;

const api = async (path, init) => {
  const res = await fetch(`api/${path}`, init);
  const text = await res.text();
  return { ok: res.ok, status: res.status, json: text ? JSON.parse(text) : undefined };
};
const post = (path, body) => api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

function say(text, isError = false) {
  const line = document.createElement('div');
  line.textContent = text;
  if (isError) line.className = 'error';
  $('messages').prepend(line);
}

/** The refusal of POST /prompt as lines: the reason, then each node's errors. */
function describeRefusal(answer) {
  const lines = [`${answer.error?.message ?? 'refused'}${answer.error?.details ? `: ${answer.error.details}` : ''}`];
  for (const [id, node] of Object.entries(answer.node_errors ?? {})) {
    for (const e of node.errors) lines.push(`  node ${id} (${node.class_type}): ${e.message}${e.details ? ` — ${e.details}` : ''}`);
  }
  return lines.join('\n');
}

async function queueFile(file) {
  const params = new URLSearchParams({ queue: 'true', front: String($('front').checked) });
  if (clientId) params.set('client_id', clientId);
  const res = await api(`workflow/import?${params}`, { method: 'POST', body: file });
  if (res.ok) say(`${file.name}: queued as ${res.json.prompt_id}`);
  else say(`${file.name}: ${describeRefusal(res.json ?? {})}`, true);
}

function viewUrl(image, preview) {
  const params = new URLSearchParams({ filename: image.filename, subfolder: image.subfolder ?? '', type: image.type ?? 'output' });
  if (preview) params.set('preview', 'webp;85');
  return `api/view?${params}`;
}

function item(promptId, parts) {
  const li = document.createElement('li');
  const id = document.createElement('span');
  id.className = 'id';
  id.textContent = promptId;
  li.append(id, ...parts);
  return li;
}

function button(label, onClick) {
  const b = document.createElement('button');
  b.textContent = label;
  b.onclick = onClick;
  return b;
}

async function refreshQueue() {
  const { json } = await api('queue');
  const list = $('queue');
  list.replaceChildren(
    ...json.queue_running.map(([, id]) => item(id, [Object.assign(document.createElement('span'), { className: 'badge', textContent: 'running' })])),
    ...json.queue_pending.map(([number, id]) =>
      item(id, [
        Object.assign(document.createElement('span'), { textContent: `#${number}` }),
        button('Run next', () => post('queue', { move_to_front: [id] })),
        button('Delete', () => post('queue', { delete: [id] })),
      ]),
    ),
  );
}

async function refreshHistory() {
  const { json } = await api('history?max_items=30');
  const entries = Object.entries(json).reverse();
  $('history').replaceChildren(
    ...entries.map(([id, h]) => {
      const outcome = h.status?.outcome ?? h.status?.status_str;
      const badge = Object.assign(document.createElement('span'), { className: `badge ${outcome}`, textContent: outcome });
      const parts = [badge];
      const t = h.timing;
      if (t?.started_at) parts.push(Object.assign(document.createElement('span'), { textContent: `${((t.finished_at - t.started_at) / 1000).toFixed(1)} s` }));
      const error = h.status?.messages?.find(([type]) => type === 'execution_error');
      if (error) parts.push(Object.assign(document.createElement('span'), { className: 'error', textContent: `${error[1].node_type ?? ''} ${error[1].exception_message}` }));
      for (const output of Object.values(h.outputs ?? {})) {
        for (const image of output.images ?? []) {
          const link = Object.assign(document.createElement('a'), { href: viewUrl(image), target: '_blank' });
          link.append(Object.assign(document.createElement('img'), { src: viewUrl(image, true), alt: image.filename, loading: 'lazy' }));
          parts.push(link);
        }
      }
      return item(id, parts);
    }),
  );
}

const refresh = () => Promise.all([refreshQueue(), refreshHistory()]).catch((err) => say(String(err), true));

socket.on('connect', () => ($('connection').textContent = 'connected'));
socket.on('disconnect', () => ($('connection').textContent = 'disconnected'));
socket.on('status', (data) => {
  if (data.sid) {
    clientId = data.sid;
    sessionStorage.setItem('loragraph.clientId', clientId);
  }
  $('remaining').textContent = data.status.exec_info.queue_remaining;
  refresh();
});
socket.on('execution_start', (d) => ($('runningText').textContent = `${d.prompt_id}: starting`));
socket.on('executing', (d) => {
  $('runningText').textContent = d.node === null ? 'idle' : `${d.prompt_id}: node ${d.node}`;
  $('progress').value = 0;
});
socket.on('progress', (d) => {
  $('progress').max = d.max;
  $('progress').value = d.value;
});
socket.on('preview', (d) => {
  const old = $('preview').src;
  $('preview').src = URL.createObjectURL(new Blob([d.image], { type: d.image_type }));
  if (old.startsWith('blob:')) URL.revokeObjectURL(old);
});
socket.on('execution_error', (d) => say(`${d.prompt_id}: error in node ${d.node_id} (${d.node_type}): ${d.exception_message}`, true));
socket.on('execution_interrupted', (d) => say(`${d.prompt_id}: interrupted`));

$('file').onchange = (e) => [...e.target.files].forEach(queueFile);
const drop = $('drop');
drop.ondragover = (e) => {
  e.preventDefault();
  drop.classList.add('over');
};
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  [...e.dataTransfer.files].forEach(queueFile);
};
$('interrupt').onclick = () => post('interrupt', {});
$('clear').onclick = () => post('queue', { clear: true });
$('free').onclick = () => post('free', { unload_models: true, free_memory: true });
$('clearHistory').onclick = () => post('history', { clear: true }).then(refresh);
