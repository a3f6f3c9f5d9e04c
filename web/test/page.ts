// The app's real index.html in a DOM, so page tests drive the same ids the
// browser test does (and fail when the markup loses one).

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JSDOM } from 'jsdom';

// Tests run from .test-out/, a sibling of src/ like test/ itself.
const INDEX = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'index.html');

export function appDocument(): { doc: Document; win: Window } {
  const dom = new JSDOM(readFileSync(INDEX, 'utf8'));
  return { doc: dom.window.document as unknown as Document, win: dom.window as unknown as Window };
}

/** Lets promise callbacks queued by a click or a fake API run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
