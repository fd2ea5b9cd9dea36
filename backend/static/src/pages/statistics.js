// Statistics: draws the charts from the page data, the same answer as GET /api/v1/statistics that the
// template's tables show. Only the Chart.js parts these charts use are registered,
// which keeps the bundle small. Without a ?tz= in the address, the page reloads once in the browser's
// time zone, so days and hours are the reader's own.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';
import { pageData, t } from '../common.js';

Chart.register(BarController, BarElement, CategoryScale, Legend, LinearScale, LineController, LineElement,
  PointElement, Tooltip);

// Okabe–Ito colours, told apart with colour-blindness too; lines also differ in dash and point shape.
const COLOURS = { in: '#0072B2', out: '#E69F00', first: '#009E73', response: '#CC79A7', hits: '#D55E00' };

const { answer, tz_given: tzGiven } = pageData();

function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || '';
  } catch {
    return '';
  }
}

function minutes(seconds) {
  return seconds === null || seconds === undefined ? null : Math.round(seconds / 6) / 10;
}

function bars(label, data, colour) {
  return { type: 'bar', label, data, backgroundColor: colour, borderColor: colour };
}

function line(label, data, colour, dash, pointStyle) {
  return {
    type: 'line', label, data, borderColor: colour, backgroundColor: colour, borderDash: dash, pointStyle,
    pointRadius: 4, spanGaps: true, tension: 0,
  };
}

function draw(id, labels, datasets, yTitle) {
  const canvas = document.getElementById(id);
  if (!canvas) return null;
  return new Chart(canvas, {
    data: { labels, datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: 'index', intersect: false },
      // point styles in the legend, so a line's key shows its marker rather than a dashed box
      plugins: { legend: { position: 'bottom', labels: { usePointStyle: true } } },
      scales: { y: { beginAtZero: true, title: { display: Boolean(yTitle), text: yTitle ?? '' } } },
    },
  });
}

function drawAll() {
  const periods = answer.totals.map((row) => row.label);
  draw('chart-messages', periods, [
    bars(t('Messages in'), answer.totals.map((row) => row.messages_in), COLOURS.in),
    bars(t('Messages out'), answer.totals.map((row) => row.messages_out), COLOURS.out),
  ], t('Messages'));
  draw('chart-responses', periods, [
    line(t('Average first response (min)'), answer.totals.map((row) => minutes(row.first_response_avg_s)),
      COLOURS.first, [], 'circle'),
    line(t('Average response (min)'), answer.totals.map((row) => minutes(row.response_avg_s)),
      COLOURS.response, [6, 4], 'triangle'),
  ], t('Minutes'));
  draw('chart-hits', answer.groups.map((group) => group.group_name), [
    bars(t('Hits per 100 outgoing messages'), answer.groups.map((group) => group.hits_per_100), COLOURS.hits),
  ]);
  draw('chart-hours', answer.hours.map((row) => `${String(row.hour).padStart(2, '0')}:00`), [
    bars(t('Messages in'), answer.hours.map((row) => row.messages_in), COLOURS.in),
    bars(t('Messages out'), answer.hours.map((row) => row.messages_out), COLOURS.out),
  ], t('Messages'));
  const perDay = (row, key) => (row.days ? Math.round((row[key] / row.days) * 10) / 10 : null);
  draw('chart-days', answer.day_types.map((row) => t(row.day_type === 'weekday' ? 'Weekdays' : 'Weekends')), [
    bars(t('Messages in per day'), answer.day_types.map((row) => perDay(row, 'messages_in')), COLOURS.in),
    bars(t('Messages out per day'), answer.day_types.map((row) => perDay(row, 'messages_out')), COLOURS.out),
  ], t('Messages'));
}

const browserZone = browserTimeZone();
if (!tzGiven && browserZone && answer && browserZone !== answer.query.tz) {
  const url = new URL(window.location.href);
  url.searchParams.set('tz', browserZone);
  window.location.replace(url.toString());
} else if (answer) {
  drawAll();
}
