// Every shipped console profile works where it runs: its selectors parse in a real DOM (jsdom's selector
// engine, stricter than the Python checks) and its patterns compile as JavaScript regular expressions.
// The format is in shared_rules/consoles/README.md; the schema is checked by tests/test_consoles.py.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { JSDOM } from 'jsdom';

const consolesDir = new URL('../../shared_rules/consoles/', import.meta.url);
const pagesDir = new URL('../../e2e/pages/', import.meta.url);
const files = readdirSync(consolesDir).filter((name) => name.endsWith('.json')).sort();
const { document } = new JSDOM('<!doctype html><body><div class="row"></div></body>').window;

// [path, selector] and [path, pattern] for every selector and pattern in a profile.
function collect(profile) {
  const selectors = [];
  const patterns = [];
  const field = (value, path) => {
    if (value == null) return;
    if (Array.isArray(value)) {
      value.forEach((each, index) => field(each, `${path}[${index}]`));
    } else if (typeof value === 'string') {
      selectors.push([path, value]);
    } else {
      if (value.selector != null) selectors.push([`${path}.selector`, value.selector]);
      if (value.exclude != null) selectors.push([`${path}.exclude`, value.exclude]);
      if (value.pattern != null) patterns.push([`${path}.pattern`, value.pattern]);
    }
  };
  const { mask = {}, conversation = {}, messages, composer } = profile;
  for (const key of ['regions', 'skip']) (mask[key] ?? []).forEach((s, i) => selectors.push([`mask.${key}[${i}]`, s]));
  for (const key of ['title', 'key', 'customer']) field(conversation[key], `conversation.${key}`);
  field(profile.account, 'account');
  selectors.push(['messages.row', messages.row]);
  for (const key of ['id', 'text', 'time', 'sender']) field(messages[key], `messages.${key}`);
  for (const key of ['outgoing', 'deleted', 'edited']) field(messages[key], `messages.${key}`); // markers: same keys
  selectors.push(['composer.input', composer.input]);
  if (composer.send != null) selectors.push(['composer.send', composer.send]);
  return { selectors, patterns };
}

const groups = (pattern) => new RegExp(`${pattern}|`).exec('').length - 1;

describe('console profiles', () => {
  it('ships the five consoles, each id its file name', () => {
    const ids = files.map((name) => JSON.parse(readFileSync(new URL(name, consolesDir), 'utf8')).id);
    assert.deepEqual(ids, files.map((name) => name.replace(/\.json$/, '')));
    assert.deepEqual(ids, ['generic', 'messenger', 'telegram_a', 'telegram_k', 'whatsapp']);
  });

  for (const name of files) {
    describe(name, () => {
      // JSON.parse refuses a byte-order mark, as the extension would.
      const profile = JSON.parse(readFileSync(new URL(name, consolesDir), 'utf8'));
      const { selectors, patterns } = collect(profile);

      it('has selectors that parse in a DOM, for querying and for matching a row', () => {
        assert.ok(selectors.length >= 4);
        const row = document.querySelector('.row');
        for (const [path, selector] of selectors) {
          assert.doesNotThrow(() => document.querySelectorAll(selector), `${path}: ${selector}`);
          assert.doesNotThrow(() => row.matches(selector), `${path}: ${selector}`);
        }
      });

      it('has patterns that compile as JavaScript, with at most one group', () => {
        for (const [path, pattern] of patterns) {
          assert.doesNotThrow(() => new RegExp(pattern), `${path}: ${pattern}`);
          assert.ok(groups(pattern) <= 1, `${path}: ${pattern} has ${groups(pattern)} groups`);
        }
      });

      it('has a test page', () => {
        assert.ok(existsSync(new URL(`${profile.id}.html`, pagesDir)), `e2e/pages/${profile.id}.html`);
      });
    });
  }

  it('catches what the Python checks cannot', () => {
    // Balanced and brace-free, so the Python checks pass them, yet none is a selector.
    for (const selector of ['div:nonsense', '[data-id=]', '.1abc', 'div:not()']) {
      assert.throws(() => document.querySelector(selector), selector);
    }
  });
});
