// llmkit chat: a small client of `llmkit serve` (OpenAI-style /v1/chat/completions with SSE streaming).
// No framework and no build step: the DOM API, fetch() and a ReadableStream reader.
'use strict';

const $ = (id) => document.getElementById(id);
const ui = {
  conversation: $('conversation'), empty: $('empty-hint'), error: $('error'), modelInfo: $('model-info'),
  form: $('composer'), prompt: $('prompt'), send: $('send'), stop: $('stop'), clear: $('clear'),
  system: $('system'), temperature: $('temperature'), temperatureValue: $('temperature-value'),
  maxTokens: $('max-tokens'), ragRow: $('rag-row'), rag: $('rag'), apiKey: $('api-key'),
};

const API_KEY_STORAGE = 'llmkit.apiKey';
let history = [];        // the whole conversation, [{role, content}], sent again each turn
let controller = null;   // the AbortController of the answer being streamed, if any
let ragAvailable = false;

// ---------------------------------------------------------------------------------------------
// Markdown: a deliberately small renderer. Everything is HTML-escaped FIRST; the renderer then only
// adds tags of its own, so model text can never become markup. Supports paragraphs, headings,
// fenced code blocks, flat lists, `code`, **bold**, *italic*, [text](http(s) links) and [n] citations.

function escapeHtml(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
          .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

// One line of already-escaped text -> inline HTML. `sources` maps a citation number to its url.
function renderInline(escaped, sources) {
  // Split out `code` spans first: odd pieces are code and get no further formatting.
  return escaped.split(/`([^`]+)`/).map((piece, i) => {
    if (i % 2 === 1) return `<code>${piece}</code>`;
    return piece
      .replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>')
      .replace(/\*([^*\s](?:[^*]*[^*\s])?)\*/g, '<em>$1</em>')
      // Links only for http(s): no javascript: or data: URLs. Quotes are already &quot;.
      .replace(/\[([^\]]+)\]\((https?:\/\/[^\s()[\]]+)\)/g,
               '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>')
      .replace(/\[(\d+)\]/g, (whole, n) => {
        const url = sources.get(Number(n));
        return url ? `<a class="cite" href="${escapeHtml(url)}" target="_blank" rel="noopener">[${n}]</a>` : whole;
      });
  }).join('');
}

function renderMarkdown(text, sources = new Map()) {
  const lines = escapeHtml(text).split('\n');
  const out = [];
  let paragraph = [];   // lines of the paragraph being collected
  let list = null;      // {tag: 'ul'|'ol', items: []} while inside a list

  const flush = () => {
    if (paragraph.length) out.push(`<p>${paragraph.map((l) => renderInline(l, sources)).join('<br>')}</p>`);
    if (list) out.push(`<${list.tag}>${list.items.map((it) => `<li>${renderInline(it, sources)}</li>`).join('')}</${list.tag}>`);
    paragraph = [];
    list = null;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m;
    if (/^\s*```/.test(line)) {                        // fenced code block (may still be open while streaming)
      flush();
      const code = [];
      while (++i < lines.length && !/^\s*```/.test(lines[i])) code.push(lines[i]);
      out.push(`<pre><code>${code.join('\n')}</code></pre>`);
    } else if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) { // heading: # -> h3 ... (h1/h2 belong to the page)
      flush();
      const level = Math.min(m[1].length + 2, 6);
      out.push(`<h${level}>${renderInline(m[2], sources)}</h${level}>`);
    } else if ((m = /^\s*(?:([-*+])|\d+[.)])\s+(.*)$/.exec(line))) { // list item
      const tag = m[1] ? 'ul' : 'ol';
      if (paragraph.length || (list && list.tag !== tag)) flush();
      if (!list) list = { tag, items: [] };
      list.items.push(m[2]);
    } else if (line.trim() === '') {
      flush();
    } else {
      if (list) flush();
      paragraph.push(line);
    }
  }
  flush();
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Server-sent events: yields each event's data as parsed JSON until "data: [DONE]".

async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();   // {stream: true} below keeps UTF-8 split across reads intact
  let buffer = '';
  let data = [];                       // the data: lines of the current event
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    // Handle every complete line; a partial last line waits in `buffer` for the next read.
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      if (line.startsWith(':')) continue;            // a comment, e.g. the ": waiting" heartbeat
      if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      } else if (line === '' && data.length) {       // a blank line ends the event
        const payload = data.join('\n');
        data = [];
        if (payload === '[DONE]') return;
        yield JSON.parse(payload);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Talking to the server.

function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = ui.apiKey.value.trim();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

// The message of an error response: {"error":{"message":...}} when the body is JSON.
async function errorMessage(response) {
  const text = await response.text();
  try {
    const message = JSON.parse(text).error.message;
    if (message) return `${response.status}: ${message}`;
  } catch (_) { /* not JSON: use the text as it is */ }
  return `${response.status} ${response.statusText}${text ? ': ' + text.slice(0, 200) : ''}`;
}

async function loadModelInfo() {
  try {
    const response = await fetch('/v1/models', { headers: headers() });
    if (!response.ok) throw new Error(await errorMessage(response));
    const models = (await response.json()).data;
    const chat = models.find((m) => m.type !== 'embedding') || models[0];
    ragAvailable = Boolean(chat.rag);
    ui.ragRow.hidden = !ragAvailable;
    const parts = [chat.id, chat.description];
    if (!String(chat.description).includes(`context ${chat.context}`)) parts.push(`context ${chat.context}`);
    parts.push(`RAG ${ragAvailable ? 'on' : 'off'}`);
    ui.modelInfo.textContent = parts.filter(Boolean).join(' · ');
    ui.modelInfo.dataset.model = chat.id;
    hideError();
  } catch (err) {
    ui.modelInfo.textContent = 'Model info unavailable';
    showError(`Could not read /v1/models: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The conversation view.

function addMessage(role, text) {
  ui.empty.hidden = true;
  const article = document.createElement('article');
  article.className = `message ${role}`;
  const who = document.createElement('h2');
  who.className = 'who';
  who.textContent = role === 'user' ? 'You' : 'Assistant';
  const body = document.createElement('div');
  body.className = 'body';
  body.textContent = text;   // user text is shown as typed, never as markup
  article.append(who, body);
  ui.conversation.append(article);
  scrollToEnd();
  return article;
}

function scrollToEnd() {
  ui.conversation.scrollTop = ui.conversation.scrollHeight;
}

// Sources (RAG) under an answer: a numbered list of links to /chunks/ID.
function renderSources(article, sources) {
  const box = document.createElement('details');
  box.className = 'sources';
  box.open = true;
  const summary = document.createElement('summary');
  summary.textContent = `Sources (${sources.length})`;
  const list = document.createElement('ol');
  for (const s of sources) {
    const item = document.createElement('li');
    item.value = s.number;
    item.dataset.number = s.number;
    const link = document.createElement('a');
    link.href = s.url;
    link.target = '_blank';
    link.rel = 'noopener';
    link.textContent = s.label;
    const score = document.createElement('span');
    score.className = 'score';
    score.textContent = ` cosine ${Number(s.cosine).toFixed(2)}`;
    item.append(link, score);
    list.append(item);
  }
  box.append(summary, list);
  article.append(box);
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

function hideError() {
  ui.error.hidden = true;
}

function setBusy(busy) {
  ui.send.disabled = busy;
  ui.stop.disabled = !busy;
  ui.conversation.setAttribute('aria-busy', String(busy));
}

// ---------------------------------------------------------------------------------------------
// One turn: send the history, stream the answer into a new assistant message.

async function send(text) {
  hideError();
  history.push({ role: 'user', content: text });
  addMessage('user', text);
  const article = addMessage('assistant', '');
  const body = article.querySelector('.body');
  body.classList.add('streaming');

  const system = ui.system.value.trim();
  const request = {
    messages: system ? [{ role: 'system', content: system }, ...history] : history,
    stream: true,
    stream_options: { include_usage: true },
    temperature: Number(ui.temperature.value),
    max_tokens: Number(ui.maxTokens.value) || 256,
  };
  if (ragAvailable) request.rag = ui.rag.checked;

  let answer = '';
  let pieces = 0;
  let usage = null;
  let outcome = 'done';
  const sources = new Map();   // number -> url, for the [n] links
  let firstToken = 0;
  let pending = false;         // one render per animation frame, however fast tokens arrive
  const render = () => {
    pending = false;
    body.innerHTML = renderMarkdown(answer, sources);   // safe: renderMarkdown escapes first
    scrollToEnd();
  };

  controller = new AbortController();
  setBusy(true);
  try {
    const response = await fetch('/v1/chat/completions', {
      method: 'POST', headers: headers(), body: JSON.stringify(request), signal: controller.signal,
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    for await (const chunk of sseEvents(response)) {
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.sources) {
        for (const s of chunk.sources) sources.set(s.number, s.url);
        renderSources(article, chunk.sources);
      }
      if (chunk.citations) {   // mark the sources the answer actually cites
        for (const n of chunk.citations) article.querySelector(`.sources li[data-number="${Number(n)}"]`)?.classList.add('cited');
      }
      if (chunk.usage) usage = chunk.usage;
      const piece = chunk.choices?.[0]?.delta?.content;
      if (piece) {
        if (!firstToken) firstToken = performance.now();
        answer += piece;
        pieces++;
        article.dataset.pieces = pieces;
        if (!pending) { pending = true; requestAnimationFrame(render); }
      }
    }
  } catch (err) {
    if (err.name === 'AbortError') {
      outcome = 'stopped';
    } else {
      outcome = 'error';
      showError(`Error: ${err.message}`);
    }
  } finally {
    controller = null;
    setBusy(false);
  }

  if (!article.isConnected) return;   // "New chat" during the answer: the turn is gone
  render();
  body.classList.remove('streaming');
  if (answer) {
    history.push({ role: 'assistant', content: answer });   // a stopped answer is kept as it is
  } else if (outcome === 'error') {
    history.pop();                                           // nothing came back: forget the turn
    article.remove();
  }
  addMeta(article, outcome, usage, pieces, firstToken);
  article.dataset.state = outcome;
}

// The line under an answer: token usage and speed.
function addMeta(article, outcome, usage, pieces, firstToken) {
  if (outcome === 'error' && !pieces) return;
  const meta = document.createElement('p');
  meta.className = 'meta';
  const seconds = firstToken ? (performance.now() - firstToken) / 1000 : 0;
  const parts = [];
  if (usage) {
    parts.push(`${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion tokens`);
    if (seconds > 0 && usage.completion_tokens > 1) {
      parts.push(`${((usage.completion_tokens - 1) / seconds).toFixed(1)} tokens/s`);
    }
  } else {
    parts.push(`${pieces} tokens received`);
  }
  if (outcome === 'stopped') parts.push('stopped');
  meta.textContent = parts.join(' · ');
  article.append(meta);
}

// ---------------------------------------------------------------------------------------------
// Wiring.

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.prompt.value.trim();
  if (!text || controller) return;
  ui.prompt.value = '';
  send(text);
});

// Enter sends, Shift+Enter is a newline. While an IME composition is open (Korean, Japanese, ...)
// Enter confirms the composition instead: isComposing, or keyCode 229 in some browsers.
ui.prompt.addEventListener('keydown', (event) => {
  if (event.key !== 'Enter' || event.shiftKey) return;
  if (event.isComposing || event.keyCode === 229) return;
  event.preventDefault();
  ui.form.requestSubmit();
});

ui.stop.addEventListener('click', () => controller?.abort());

ui.clear.addEventListener('click', () => {
  controller?.abort();
  history = [];
  ui.conversation.querySelectorAll('.message').forEach((m) => m.remove());
  ui.empty.hidden = false;
  hideError();
  ui.prompt.focus();
});

ui.temperature.addEventListener('input', () => {
  ui.temperatureValue.textContent = Number(ui.temperature.value).toFixed(2);
});

ui.apiKey.value = localStorage.getItem(API_KEY_STORAGE) || '';
ui.apiKey.addEventListener('change', () => {
  const key = ui.apiKey.value.trim();
  if (key) localStorage.setItem(API_KEY_STORAGE, key);
  else localStorage.removeItem(API_KEY_STORAGE);
  loadModelInfo();
});

// For tests and the curious: window.llmkit.renderMarkdown('**hi**')
window.llmkit = { renderMarkdown, escapeHtml };

loadModelInfo();
ui.prompt.focus();
