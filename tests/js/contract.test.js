import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MESSAGES, SENDERS } from '../../extension/shared/messages.js';

const extensionDir = fileURLToPath(new URL('../../extension/', import.meta.url));
const readJson = (path) => JSON.parse(readFileSync(join(extensionDir, path), 'utf8'));

describe('message contract', () => {
  it('gives every message a unique type', () => {
    const types = Object.values(MESSAGES);
    assert.equal(new Set(types).size, types.length);
  });

  it('names the sender in both the constant and the type, and allows only that sender', () => {
    for (const [name, type] of Object.entries(MESSAGES)) {
      const from = name.split('_TO_')[0].toLowerCase();
      assert.match(name, /^(UI|SW|CONTENT)_TO_(UI|SW|CONTENT)_[A-Z_]+$/);
      assert.ok(type.startsWith(`${from}>`), `${name} = ${type}`);
      assert.equal(SENDERS[type], from);
    }
  });
});

describe('locales', () => {
  const en = readJson('_locales/en/messages.json');
  const zh = readJson('_locales/zh_CN/messages.json');

  it('has the same messages and placeholders in every language', () => {
    assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
    for (const key of Object.keys(en)) {
      assert.deepEqual(Object.keys(zh[key].placeholders ?? {}), Object.keys(en[key].placeholders ?? {}), key);
      assert.ok(zh[key].message.trim(), `zh_CN ${key} is empty`);
    }
  });

  it('defines every message the pages and manifest use', () => {
    const used = new Set();
    const sources = [];
    const walk = (dir) => {
      for (const entry of readdirSync(join(extensionDir, dir), { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (/\.(html|js|json)$/.test(entry.name) && !path.startsWith('_locales')) sources.push(path);
      }
    };
    walk('');
    for (const path of sources) {
      const text = readFileSync(join(extensionDir, path), 'utf8');
      for (const [, key] of text.matchAll(/data-i18n="(\w+)"/g)) used.add(key);
      for (const [, key] of text.matchAll(/getMessage\('(\w+)'/g)) used.add(key);
      for (const [, key] of text.matchAll(/__MSG_(\w+)__/g)) used.add(key);
    }
    assert.ok(used.size > 10);
    for (const key of used) assert.ok(en[key], `missing message ${key}`);
  });

  it('has a message for every connection state and local validation error', () => {
    for (const state of ['not_enrolled', 'connecting', 'connected', 'disconnected', 'refused']) {
      assert.ok(en[`connection_${state}`], state);
    }
    for (const reason of ['empty', 'invalid', 'scheme', 'insecure']) assert.ok(en[`error_server_url_${reason}`]);
    for (const reason of ['empty', 'invalid']) assert.ok(en[`error_code_${reason}`]);
  });
});

describe('manifest', () => {
  const manifest = readJson('manifest.json');

  it('runs the service worker as a module and loads files that exist', () => {
    assert.equal(manifest.manifest_version, 3);
    assert.equal(manifest.background.type, 'module');
    const files = [
      manifest.background.service_worker,
      manifest.options_ui.page,
      manifest.action.default_popup,
    ];
    for (const file of files) assert.ok(readFileSync(join(extensionDir, file)), file);
  });

  it('declares no content scripts: the console profiles decide where the content script runs', () => {
    assert.equal(manifest.content_scripts, undefined);
    assert.equal(manifest.web_accessible_resources, undefined, 'pages cannot fingerprint the extension');
    assert.ok(manifest.permissions.includes('scripting'));
  });
});
