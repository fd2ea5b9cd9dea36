// Home: today's figures against yesterday's. The template renders the cards; this script keeps their
// numbers current. It asks for the overview again when the panel hears activity, an alert or an agent
// going on- or offline (at most once per 5 s, however busy the tenant), and once a minute regardless.
// Days are the browser's time zone unless the address names one (?tz=).
import { el, pageData, panelSocket, t } from '../common.js';

const THROTTLE_MS = 5000;
const REFRESH_MS = 60000;
const data = pageData();

function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

const timeZone = data.tz_given ? data.overview.tz : browserTimeZone();

/** 45 s, 3 min 20 s, 1 h 05 min: the same as the template's `duration` filter. */
function duration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const whole = Math.round(seconds);
  if (whole < 60) return t('%(s)s s', { s: whole });
  if (whole < 3600) return t('%(m)s min %(s)s s', { m: Math.floor(whole / 60), s: whole % 60 });
  return t('%(h)s h %(m)s min', { h: Math.floor(whole / 3600), m: Math.floor((whole % 3600) / 60) });
}

function figure(value, kind) {
  if (value === null || value === undefined) return '–';
  if (kind === 'duration') return duration(value);
  if (kind === 'percent') return `${value.toFixed(1)}%`;
  return String(value);
}

// Arrow, sign and words carry the direction; the colour (blue better, orange worse) only repeats it.
function delta(kind, worse, f, soFar) {
  const reference = t(soFar ? 'yesterday by this time: %(value)s' : 'yesterday: %(value)s',
    { value: figure(f.yesterday, kind) });
  const tail = el('span', { class: 'muted' }, `· ${reference}`);
  if (f.change === null) return [el('span', { class: 'delta same' }, t('no figure')), ' ', tail];
  if (f.change === 0) return [el('span', { class: 'delta same' }, `= ${t('no change')}`), ' ', tail];
  const up = f.change > 0;
  let tone = 'neutral';
  if (worse) tone = (up && worse === 'up') || (!up && worse === 'down') ? 'worse' : 'better';
  let amount = String(Math.abs(f.change));
  // a share changes by percentage points; a relative change of a percentage would mislead
  if (kind === 'percent') amount = t('%(n)s pts', { n: Math.abs(f.change).toFixed(1) });
  else if (f.change_pct !== null) amount = `${Math.abs(f.change_pct).toFixed(1)}%`;
  else if (kind === 'duration') amount = duration(Math.abs(f.change));
  return [el('span', { class: `delta ${tone}` }, `${up ? '▲' : '▼'} ${up ? '+' : '−'}${amount}`), ' ', tail];
}

function render(overview) {
  for (const tile of document.querySelectorAll('#overview [data-figure]')) {
    const key = tile.dataset.figure;
    const value = tile.querySelector('.value');
    if (key === 'agents_online') {
      value.textContent = String(overview.agents_online);
      tile.querySelector('.of').textContent = ` / ${overview.agents}`;
      continue;
    }
    const f = overview.figures[key];
    if (!f) continue;
    value.textContent = figure(f.today, tile.dataset.kind);
    tile.querySelector('.change').replaceChildren(...delta(tile.dataset.kind, tile.dataset.worse, f, overview.so_far));
  }
  const when = document.getElementById('overview-when');
  if (when) when.textContent = t('Day %(day)s in time zone %(tz)s.', { day: overview.day, tz: overview.tz });
}

async function refresh() {
  const url = `${data.url}?tz=${encodeURIComponent(timeZone)}`;
  try {
    const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (response.ok) render(await response.json());
  } catch {
    // offline for a moment: the next event or the minute's refresh tries again
  }
}

let lastRun = 0;
let pending = null;

/** Runs `refresh` soon, but never twice within THROTTLE_MS; requests in between share one run. */
function requestRefresh() {
  if (pending) return;
  const wait = Math.max(0, lastRun + THROTTLE_MS - Date.now());
  pending = setTimeout(() => {
    pending = null;
    lastRun = Date.now();
    refresh();
  }, wait);
}

if (data.url) {
  const socket = panelSocket();
  for (const name of ['activity', 'alert', 'agent_status']) socket.on(name, requestRefresh);
  setInterval(requestRefresh, REFRESH_MS);
  if (timeZone !== data.overview.tz) requestRefresh();
}
