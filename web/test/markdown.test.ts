import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import createDOMPurify from 'dompurify';
import { JSDOM } from 'jsdom';
import { createMarkdownRenderer, SANITIZE_CONFIG } from '../src/markdown';

const dom = new JSDOM('<!doctype html><body></body>');
const render = createMarkdownRenderer(dom.window as unknown as Parameters<typeof createMarkdownRenderer>[0]);

/** Parses the output the way the browser will, to assert on elements, not strings. */
function fragment(html: string): DocumentFragment {
  const t = dom.window.document.createElement('template');
  t.innerHTML = html;
  return t.content;
}

function assertNoHandlers(f: DocumentFragment): void {
  for (const el of f.querySelectorAll('*')) {
    for (const attr of el.attributes) assert.doesNotMatch(attr.name, /^on/i, `<${el.tagName}> has ${attr.name}`);
  }
}

describe('markdown renderer', () => {
  it('renders markdown', () => {
    const f = fragment(render('**bold** and `code`\n\n- item'));
    assert.equal(f.querySelector('strong')?.textContent, 'bold');
    assert.equal(f.querySelector('code')?.textContent, 'code');
    assert.equal(f.querySelector('li')?.textContent, 'item');
  });

  it('shows raw HTML as text, so handlers and scripts never become elements', () => {
    const f = fragment(render('<img src=x onerror="window.__xss=1"> **bold** <script>window.__xss=2</script>\n\n<div onclick="x()">block</div>'));
    assert.equal(f.querySelector('strong')?.textContent, 'bold');
    assert.equal(f.querySelector('img, script, div'), null);
    assert.match(f.textContent ?? '', /<img src=x onerror="window.__xss=1">/);
    assert.match(f.textContent ?? '', /<div onclick="x\(\)">block<\/div>/);
    assertNoHandlers(f);
  });

  it('drops javascript: and data: links', () => {
    const f = fragment(render('[x](javascript:alert(1)) [y](JAVASCRIPT:alert(2)) [z](data:text/html,<b>1</b>) ![i](javascript:alert(3))'));
    for (const a of f.querySelectorAll('a')) assert.doesNotMatch(a.getAttribute('href') ?? '', /^(javascript|data):/i);
    assert.equal(f.querySelector('img'), null);
    assertNoHandlers(f);
  });

  it('opens links in a new tab without opener or referrer', () => {
    const a = fragment(render('[docs](https://example.com/docs)')).querySelector('a');
    assert.equal(a?.getAttribute('href'), 'https://example.com/docs');
    assert.equal(a?.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(a?.getAttribute('target'), '_blank');
  });

  it('the sanitizer config alone strips what marked could ever pass through', () => {
    const purify = createDOMPurify(dom.window as unknown as Parameters<typeof createDOMPurify>[0]);
    const f = fragment(
      purify.sanitize(
        '<p style="color:red" onclick="x()">p</p><img src=x onerror=alert(1)><a href="javascript:alert(1)">a</a><svg><script>1</script></svg><form><input><button>b</button></form><iframe src="/"></iframe><style>*{}</style><video src=x></video>',
        SANITIZE_CONFIG,
      ),
    );
    assert.equal(f.querySelector('p')?.textContent, 'p');
    assert.equal(f.querySelector('[style], img, svg, script, form, input, button, iframe, style, video'), null);
    assert.equal(f.querySelector('a')?.hasAttribute('href'), false);
    assertNoHandlers(f);
  });
});
