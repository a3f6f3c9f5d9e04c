// The link a notice or error may offer ("[Continue in new session]"). The
// frame's text and href come from the server but are still treated as data:
// the text is only ever text, and the href becomes a link only when it stays
// on this origin, so a frame can never point the user at another site or at
// a `javascript:` URL.

import type { FrameAction } from './protocol';

/** The plain text and the one link a notice shows, in reading order. */
export type ActionPart = { kind: 'text'; text: string } | { kind: 'link'; text: string; href: string };

/**
 * `href` when it is a same-origin path ("/", "/?session=x"), else null.
 * Besides "//host", browsers also read "/\host" and "/<tab>/host" as
 * "//host", so the prefix test alone is not enough: the href is also resolved
 * the way the browser will resolve it, and must stay on the origin.
 */
export function safeActionHref(href: unknown): string | null {
  if (typeof href !== 'string' || !href.startsWith('/') || href.startsWith('//')) return null;
  const base = 'http://origin.invalid';
  try {
    if (new URL(href, base).origin !== base) return null;
  } catch {
    return null;
  }
  return href;
}

/**
 * Splits `message` around its `[label]` so the label can become a link. With
 * no usable action the message is one text part, exactly as sent; when the
 * message does not mention the label, the link follows it.
 */
export function actionParts(message: string, action: FrameAction | null | undefined): ActionPart[] {
  const label = typeof action?.label === 'string' ? action.label.trim() : '';
  const href = safeActionHref(action?.href);
  if (!label || href === null) return [{ kind: 'text', text: message }];
  const marker = `[${label}]`;
  const at = message.indexOf(marker);
  const parts: ActionPart[] = [];
  if (at < 0) {
    if (message) parts.push({ kind: 'text', text: `${message} ` });
    parts.push({ kind: 'link', text: label, href });
    return parts;
  }
  const before = message.slice(0, at);
  const after = message.slice(at + marker.length);
  if (before) parts.push({ kind: 'text', text: before });
  parts.push({ kind: 'link', text: label, href });
  if (after) parts.push({ kind: 'text', text: after });
  return parts;
}

/** Replaces `el`'s content with `message`, its action as `a.notice-action`. Never parses HTML. */
export function fillWithAction(el: HTMLElement, message: string, action: FrameAction | null | undefined): void {
  const doc = el.ownerDocument;
  el.replaceChildren(
    ...actionParts(message, action).map((part) => {
      if (part.kind === 'text') return doc.createTextNode(part.text);
      const a = doc.createElement('a');
      a.className = 'notice-action';
      a.setAttribute('href', part.href);
      a.dataset.testid = 'notice-action';
      a.textContent = part.text;
      return a;
    }),
  );
}

/**
 * The session a same-origin app link opens (`/?session=<id>` on the app's own
 * path), so a click can switch in place instead of reloading the page.
 */
export function sessionFromHref(href: string, here: { origin: string; pathname: string }): string | null {
  let url: URL;
  try {
    url = new URL(href, `${here.origin}${here.pathname}`);
  } catch {
    return null;
  }
  if (url.origin !== here.origin || url.pathname !== here.pathname) return null;
  const id = url.searchParams.get('session');
  return id ? id : null;
}

/** A plain left click: anything else (new tab, new window, download) is left to the browser. */
export function isPlainClick(ev: Pick<MouseEvent, 'button' | 'ctrlKey' | 'metaKey' | 'shiftKey' | 'altKey'>): boolean {
  return ev.button === 0 && !ev.ctrlKey && !ev.metaKey && !ev.shiftKey && !ev.altKey;
}
