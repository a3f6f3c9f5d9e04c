// Markdown for model output. The model's text is untrusted: marked renders
// it with raw HTML escaped, and DOMPurify cleans what marked emits (links,
// attributes) before it touches the DOM. The gateway's CSP (default-src
// 'self') is the last line of defence, not the first.

import createDOMPurify, { type Config, type WindowLike } from 'dompurify';
import { Marked } from 'marked';

/**
 * HTML profile only (no SVG/MathML); no styles (CSP would refuse inline
 * styles anyway); no images or form controls: external images cannot load
 * under the CSP, and controls in a reply could pass for the app's own.
 */
export const SANITIZE_CONFIG = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'img', 'picture', 'video', 'audio', 'source', 'form', 'input', 'button', 'select', 'textarea', 'iframe'],
  FORBID_ATTR: ['style', 'srcset'],
  ALLOW_DATA_ATTR: false,
} satisfies Config;

/** Returns a function from markdown to sanitized HTML, bound to `win`'s DOM. */
export function createMarkdownRenderer(win: WindowLike): (markdown: string) => string {
  const purify = createDOMPurify(win);
  purify.addHook('afterSanitizeAttributes', (node) => {
    if (node.nodeName === 'A' && node.hasAttribute('href')) {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer');
    }
  });
  const marked = new Marked({
    gfm: true,
    breaks: true,
    // Raw HTML in a reply is shown as the text it is, never parsed: even an
    // inert parse of `<img onerror>` costs a CSP violation report in Chromium.
    renderer: { html: ({ text }) => escapeHtml(text) },
  });
  return (markdown) => {
    const html = marked.parse(markdown, { async: false });
    return purify.sanitize(html, SANITIZE_CONFIG);
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
