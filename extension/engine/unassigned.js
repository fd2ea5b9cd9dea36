// Code points that the Python engine's Unicode (unicodedata) leaves unassigned.
//
// Newer JavaScript runtimes give some of them letters, case mappings and compatibility forms; the engine
// reads them as the Python engine does: unchanged, and not part of a word. The table comes with the
// compiled payload (`unicode.unassigned`, made by backend/engine/rules.py), so it always matches the
// Python that compiled the rules, however old the extension is.

// `encoded` holds one "gap+length" pair (hex) per range, comma-separated; each gap counts from the last
// code point of the range before (from 0 for the first), and a range covers gap..gap+length.
export function decodeRanges(encoded) {
  const starts = [];
  const ends = [];
  let last = 0;
  for (const pair of encoded ? encoded.split(',') : []) {
    const match = /^([0-9a-f]+)\+([0-9a-f]+)$/.exec(pair);
    if (match === null) throw new Error(`unicode.unassigned: ${JSON.stringify(pair)} is not "gap+length"`);
    const start = last + parseInt(match[1], 16);
    last = start + parseInt(match[2], 16);
    starts.push(start);
    ends.push(last);
  }
  return { starts: Int32Array.from(starts), ends: Int32Array.from(ends) };
}

export class UnassignedCodePoints {
  // unicode: the payload's `unicode` object, {version, unassigned}.
  constructor(unicode) {
    if (typeof unicode?.unassigned !== 'string') {
      throw new Error('the payload has no unicode.unassigned table: compile it with a current backend');
    }
    this.version = unicode.version;
    const { starts, ends } = decodeRanges(unicode.unassigned);
    this.starts = starts;
    this.ends = ends;
  }

  has(cp) {
    let low = 0;
    let high = this.starts.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (cp < this.starts[mid]) high = mid - 1;
      else if (cp > this.ends[mid]) low = mid + 1;
      else return true;
    }
    return false;
  }
}
