// Behaviour the content script notices on its own: copying chat text in bulk.
// (Blocked and warned sends and contact requests are reported by the guard, deletions and edits by the
// reader; the service worker and the backend notice the rest.)

import { safeClosest, safeQueryAll } from './profile.js';

export const BULK_COPY_CHARS = 500;
export const BULK_COPY_ROWS = 5;

export function watchCopies({ document, reader, profile, emit }) {
  document.addEventListener('copy', () => {
    const selection = document.getSelection();
    if (!selection || selection.isCollapsed) return;
    const chars = selection.toString().length;
    const range = selection.getRangeAt(0);
    const container = range.commonAncestorContainer;
    const root = container.nodeType === 1 ? container : container.parentElement;
    let rows = safeQueryAll(root, profile.messages.row).filter((row) => selection.containsNode(row, true)).length;
    if (rows === 0 && safeClosest(root, profile.messages.row)) rows = 1;
    if (chars < BULK_COPY_CHARS && rows < BULK_COPY_ROWS) return;
    emit({ type: 'behaviour', kind: 'bulk_copy', conversation: reader.conversation(), details: { chars, rows } });
  }, true);
}
