import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError, enhancementsUrl, exportUrl, type HistoryFilters } from '../src/api';
import {
  CHAT_DESCRIPTION_CHARS,
  chatFirstMessage,
  contextSections,
  contextSummary,
  filterError,
  HistoryPage,
  historyDetails,
  historyElements,
  historyRow,
  NO_FILTERS,
  pageCount,
  processingText,
  statusTone,
  tenantChoices,
} from '../src/history';
import { createMarkdownRenderer } from '../src/markdown';
import { mayOpen, routeFor, showRouteLinks } from '../src/nav';
import type { Enhancement, EnhancementPage } from '../src/protocol';
import { appDocument, settle } from './page';

const CONTEXT = {
  similar_tickets: [
    { ticket_id: 'T-1', description: 'VPN drops every hour', resolution: 'Renewed the client certificate', resolved_date: '2026-01-05' },
    { ticket_id: 'T-2', description: 'VPN slow', resolution: '', resolved_date: '' },
    { ticket_id: 'T-3', description: 'VPN DNS', resolution: 'Fixed resolver', resolved_date: '' },
    { ticket_id: 'T-4', description: 'VPN again', resolution: 'Reboot', resolved_date: '' },
  ],
  kb_articles: [{ title: 'Renewing VPN client certificates', summary: 'Steps to renew', url: 'https://kb.example/vpn' }],
  systems: [{ ip: '10.0.0.1', hostname: 'vpn-gw-01', role: 'VPN gateway', client: 'Acme', location: 'DC1' }],
  ips: ['10.0.0.1'],
  sources: { ticket_history: { elapsed_ms: 12, error: null }, kb: { elapsed_ms: 10000, error: 'timed out after 10000 ms' } },
};

function job(n: number, more: Partial<Enhancement> = {}): Enhancement {
  return {
    job_id: `00000000-0000-4000-8000-00000000000${n}`,
    ticket_id: `T-10${n}`,
    tenant_id: 'acme',
    status: 'completed',
    attempts: 1,
    context_gathered: CONTEXT,
    llm_output: '## Summary\n\n**VPN** certificate expired.',
    error_message: null,
    processing_time_ms: 1250,
    cost_usd: 0.0042,
    created_at: '2026-01-02T03:04:05Z',
    completed_at: '2026-01-02T03:04:07Z',
    correlation_id: `corr-${n}`,
    subject: 'VPN keeps disconnecting',
    description: 'Since this morning the VPN client disconnects.',
    priority: 'High',
    note_id: 'n-1',
    ...more,
  } as Enhancement;
}

describe('history links', () => {
  it('builds the page and export URLs from the filters, leaving out empty ones', () => {
    assert.equal(enhancementsUrl(NO_FILTERS, 1), '/api/v1/enhancements');
    assert.equal(exportUrl(NO_FILTERS), '/api/v1/enhancements/export.csv');
    const filters: HistoryFilters = { tenantId: 'acme', status: 'failed', from: '2026-01-01', to: '2026-01-31', q: ' disk & 100% ' };
    assert.equal(
      enhancementsUrl(filters, 3),
      '/api/v1/enhancements?tenant_id=acme&status=failed&from=2026-01-01&to=2026-01-31&q=disk+%26+100%25&page=3',
    );
    assert.equal(exportUrl(filters), '/api/v1/enhancements/export.csv?tenant_id=acme&status=failed&from=2026-01-01&to=2026-01-31&q=disk+%26+100%25');
    assert.equal(exportUrl({ ...NO_FILTERS, q: '1234' }), '/api/v1/enhancements/export.csv?q=1234', 'no page: the export is every row');
  });

  it('refuses a start after the end and an over-long search', () => {
    assert.equal(filterError({ ...NO_FILTERS, from: '2026-02-02', to: '2026-02-01' }), 'The start date is after the end date.');
    assert.equal(filterError({ ...NO_FILTERS, from: '2026-02-01', to: '2026-02-01' }), null);
    assert.match(filterError({ ...NO_FILTERS, q: 'x'.repeat(201) }) ?? '', /200/);
  });

  it('counts pages of 50', () => {
    assert.equal(pageCount(0, 50), 1);
    assert.equal(pageCount(50, 50), 1);
    assert.equal(pageCount(51, 50), 2);
    assert.equal(pageCount(100_000, 50), 2000);
    assert.equal(pageCount(Number.NaN, 50), 1);
  });

  it('shows processing time in ms, then seconds', () => {
    assert.equal(processingText(null), '—');
    assert.equal(processingText(1250), '1,250 ms');
    assert.equal(processingText(12_345), '12.3 s');
  });
});

describe('status badges', () => {
  it('are green for completed, red for failed, blue for pending and processing', () => {
    assert.equal(statusTone('completed'), 'green');
    assert.equal(statusTone('failed'), 'red');
    assert.equal(statusTone('pending'), 'blue');
    assert.equal(statusTone('processing'), 'blue');
  });

  it('color each row by its status', () => {
    const { doc } = appDocument();
    for (const [status, tone] of [
      ['completed', 'green'],
      ['failed', 'red'],
      ['pending', 'blue'],
      ['processing', 'blue'],
    ] as const) {
      const badge = historyRow(doc, job(1, { status })).querySelector<HTMLElement>('.status-badge');
      assert.equal(badge?.dataset.tone, tone, status);
    }
  });
});

describe('history rows and details', () => {
  const { doc, win } = appDocument();
  const render = createMarkdownRenderer(win as unknown as Parameters<typeof createMarkdownRenderer>[0]);

  it('show the columns, and Retry only on a failed job', () => {
    const row = historyRow(doc, job(1, { completed_at: null, processing_time_ms: null }));
    const cells = [...row.cells].map((c) => c.textContent);
    assert.equal(cells[0], 'T-101');
    assert.equal(cells[1], 'acme');
    assert.equal(cells[2], 'Completed');
    assert.equal(cells[3], '—');
    assert.equal(row.querySelector('.history-completed')?.textContent, '—');
    assert.equal(row.querySelector('.history-retry'), null);
    assert.notEqual(historyRow(doc, job(1, { status: 'failed' })).querySelector('.history-retry'), null);
  });

  it('set every field as text', () => {
    const evil = '<img src=x onerror="window.__xss=1">';
    const row = historyRow(doc, job(1, { ticket_id: evil, tenant_id: evil }));
    assert.equal(row.querySelector('img'), null);
    assert.equal(row.cells[0]?.textContent, evil);
    const details = historyDetails(doc, job(1, { description: evil, subject: evil, error_message: evil, context_gathered: { similar_tickets: [{ ticket_id: evil, description: evil }] } }), render);
    assert.equal(details.querySelector('img'), null);
    assert.ok(details.textContent?.includes(evil));
  });

  it('render the note through the sanitizer, never raw', () => {
    const note = '**bold** <img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> [x](javascript:alert(1))';
    const details = historyDetails(doc, job(1, { llm_output: note }), render);
    const box = details.querySelector('.history-note');
    assert.equal(box?.querySelector('strong')?.textContent, 'bold');
    assert.equal(box?.querySelector('img, script'), null);
    for (const el of box?.querySelectorAll('*') ?? []) {
      for (const attr of el.attributes) assert.doesNotMatch(attr.name, /^on/i);
    }
    for (const a of box?.querySelectorAll('a') ?? []) assert.doesNotMatch(a.getAttribute('href') ?? '', /^javascript:/i);
  });

  it('show the context as sections, the error, and the actions', () => {
    const details = historyDetails(doc, job(1, { status: 'failed', error_message: 'ServiceDesk Plus answered 500' }), render);
    const titles = [...details.querySelectorAll('h4')].map((h) => h.textContent);
    assert.deepEqual(titles, ['Similar resolved tickets (4)', 'Knowledge-base articles (1)', 'Systems (1)', 'Addresses in the ticket', 'Sources']);
    assert.equal(details.querySelector('.history-error-text')?.textContent, 'ServiceDesk Plus answered 500');
    assert.notEqual(details.querySelector('.history-chat'), null);
    assert.notEqual(details.querySelector('.history-retry'), null);
    assert.match(details.querySelector('.history-raw pre')?.textContent ?? '', /"similar_tickets"/);
    const none = historyDetails(doc, job(1, { context_gathered: null, llm_output: null }), render);
    assert.match(none.textContent ?? '', /Not gathered yet/);
    assert.match(none.textContent ?? '', /No note/);
  });
});

describe('gathered context in words', () => {
  it('reads every part of a context', () => {
    const sections = contextSections(CONTEXT);
    assert.deepEqual(sections[0]?.lines[0], '#T-1, resolved 2026-01-05: VPN drops every hour — Resolution: Renewed the client certificate');
    assert.deepEqual(sections[1]?.lines, ['Renewing VPN client certificates: Steps to renew (https://kb.example/vpn)']);
    assert.deepEqual(sections[2]?.lines, ['10.0.0.1 vpn-gw-01 VPN gateway · Acme · DC1']);
    assert.deepEqual(sections[3], { title: 'Addresses in the ticket', lines: ['10.0.0.1'] });
    assert.deepEqual(sections[4]?.lines, ['ticket_history: answered in 12 ms', 'kb: failed after 10000 ms — timed out after 10000 ms']);
  });

  it('keeps members it does not know, and reads nothing from a non-object', () => {
    const sections = contextSections({ monitoring: { alerts: 2 } });
    assert.equal(sections.at(-1)?.title, 'monitoring');
    assert.match(sections.at(-1)?.lines[0] ?? '', /"alerts": 2/);
    assert.deepEqual(contextSections(null), []);
    assert.deepEqual(contextSections('text'), []);
    assert.deepEqual(contextSections([1, 2]), []);
  });

  it('summarizes at most three of each kind, and the failed sources', () => {
    const lines = contextSummary(CONTEXT);
    assert.equal(lines.length, 4);
    assert.match(lines[0] ?? '', /^Similar resolved tickets: #T-1 VPN drops every hour, resolved by: Renewed the client certificate; #T-2 VPN slow; #T-3 VPN DNS, resolved by: Fixed resolver; and 1 more$/);
    assert.equal(lines[1], 'Knowledge-base articles: Renewing VPN client certificates https://kb.example/vpn');
    assert.equal(lines[2], 'Systems: 10.0.0.1 vpn-gw-01 (VPN gateway)');
    assert.equal(lines[3], 'Sources that failed: kb (timed out after 10000 ms)');
    assert.deepEqual(contextSummary(null), []);
  });
});

describe("the chat's first message", () => {
  it('names the ticket, its tenant, the context and the ask', () => {
    const text = chatFirstMessage(job(7, { status: 'failed', error_message: 'ServiceDesk Plus answered 500' }));
    const lines = text.split('\n');
    assert.equal(lines[0], 'Please help me with ticket T-107 of tenant acme.');
    assert.ok(lines.includes('Subject: VPN keeps disconnecting'));
    assert.ok(lines.includes('Priority: High'));
    assert.ok(lines.includes('Since this morning the VPN client disconnects.'));
    assert.ok(lines.includes('Context csp gathered for it:'));
    assert.ok(lines.some((l) => l.startsWith('- Similar resolved tickets: #T-1')));
    assert.ok(lines.includes('Enhancement job 00000000-0000-4000-8000-000000000007: failed: ServiceDesk Plus answered 500.'));
    assert.match(lines.at(-1) ?? '', /ticket tools.*next steps/);
  });

  it('is bounded however long the ticket, and reads without a context', () => {
    const text = chatFirstMessage(job(1, { description: 'x'.repeat(100_000), context_gathered: null, subject: '' }));
    assert.ok(text.length < CHAT_DESCRIPTION_CHARS + 1000, String(text.length));
    assert.ok(!text.includes('Context csp gathered'));
    assert.ok(!text.includes('Subject:'));
    assert.ok(text.includes('…'));
  });
});

describe('tenant choices', () => {
  it('merge the listed tenants and those seen, sorted, once each', () => {
    assert.deepEqual(
      tenantChoices([{ tenants: [{ tenant_id: 'globex' }, { tenant_id: 'acme' }] } as never, null, { tenants: [{ tenant_id: 'acme' }] } as never], ['initech', '']),
      ['acme', 'globex', 'initech'],
    );
  });
});

describe('the history in the navigation', () => {
  it('is for operators and admins, the operations page for admins', () => {
    assert.deepEqual(
      ['admin', 'operator', 'user'].map((r) => [mayOpen('history', r), mayOpen('operations', r)]),
      [
        [true, true],
        [true, false],
        [false, false],
      ],
    );
    assert.equal(routeFor('/admin/history', 'operator'), 'history');
    assert.equal(routeFor('/admin/operations', 'operator'), 'chat');
    assert.equal(routeFor('/admin/operations', 'admin'), 'operations');
  });

  it('hides the links from roles that cannot use them', () => {
    const { doc } = appDocument();
    const ids = ['nav-history', 'nav-operations', 'admin-nav-history', 'admin-nav-operations'];
    const shown = () => ids.filter((id) => doc.getElementById(id)?.hidden === false);
    showRouteLinks(doc, 'admin');
    assert.deepEqual(shown(), ids);
    showRouteLinks(doc, 'operator');
    assert.deepEqual(shown(), ['nav-history', 'admin-nav-history']);
    showRouteLinks(doc, 'user');
    assert.deepEqual(shown(), []);
  });
});

describe('history page', () => {
  function page(jobs: Enhancement[], total = jobs.length) {
    const { doc, win } = appDocument();
    const loads: [HistoryFilters, number][] = [];
    const retried: string[] = [];
    const chats: [string, string][] = [];
    const confirms: string[] = [];
    let answerConfirm = true;
    let retryError: Error | null = null;
    const p = new HistoryPage(historyElements(doc), {
      load: async (filters, n): Promise<EnhancementPage> => {
        loads.push([filters, n]);
        return { enhancements: jobs, total, page: n, per_page: 50 };
      },
      retry: async (id) => {
        retried.push(id);
        if (retryError) throw retryError;
        return job(1, { job_id: id, status: 'pending' });
      },
      loadTenants: async () => [{ tenants: [{ tenant_id: 'globex' }] } as never],
      renderNote: createMarkdownRenderer(win as unknown as Parameters<typeof createMarkdownRenderer>[0]),
      confirm: (message) => {
        confirms.push(message);
        return answerConfirm;
      },
      openInChat: (tenant, message) => chats.push([tenant, message]),
      onSignedOut: () => undefined,
    });
    return {
      doc,
      p,
      loads,
      retried,
      chats,
      confirms,
      setConfirm: (v: boolean) => (answerConfirm = v),
      failRetry: (e: Error) => (retryError = e),
    };
  }

  it('loads the newest page, fills the tenant filter and pages through', async () => {
    const t = page([job(1), job(2, { tenant_id: 'initech' })], 120);
    await t.p.show();
    await settle();
    assert.deepEqual(t.loads[0], [NO_FILTERS, 1]);
    assert.equal(t.doc.querySelectorAll('#history-table tbody tr.history-row').length, 2);
    assert.equal(t.doc.getElementById('history-page-info')?.textContent, 'Page 1 of 3 · 120 jobs');
    const tenants = [...t.doc.querySelectorAll<HTMLOptionElement>('#history-tenant option')].map((o) => o.value);
    assert.deepEqual(tenants, ['', 'acme', 'globex', 'initech']);
    const statuses = [...t.doc.querySelectorAll<HTMLOptionElement>('#history-status option')].map((o) => o.value);
    assert.deepEqual(statuses, ['', 'pending', 'processing', 'completed', 'failed']);
    assert.equal((t.doc.getElementById('history-prev') as HTMLButtonElement).disabled, true);
    (t.doc.getElementById('history-next') as HTMLButtonElement).click();
    await settle();
    assert.deepEqual(t.loads[1], [NO_FILTERS, 2]);
  });

  it('applies the filters and keeps the export link on what the form holds', async () => {
    const t = page([job(1)]);
    await t.p.show();
    const set = (id: string, value: string) => {
      const el = t.doc.getElementById(id) as HTMLInputElement;
      el.value = value;
      el.dispatchEvent(new t.doc.defaultView!.Event('input'));
    };
    set('history-tenant', 'globex');
    set('history-status', 'failed');
    set('history-from', '2026-01-01');
    set('history-q', '1234');
    const link = t.doc.getElementById('history-export') as HTMLAnchorElement;
    assert.equal(link.getAttribute('href'), '/api/v1/enhancements/export.csv?tenant_id=globex&status=failed&from=2026-01-01&q=1234');
    (t.doc.getElementById('history-filters') as HTMLFormElement).dispatchEvent(new t.doc.defaultView!.Event('submit', { cancelable: true }));
    await settle();
    assert.deepEqual(t.loads.at(-1), [{ tenantId: 'globex', status: 'failed', from: '2026-01-01', to: '', q: '1234' }, 1]);
    set('history-to', '2025-12-01');
    (t.doc.getElementById('history-filters') as HTMLFormElement).dispatchEvent(new t.doc.defaultView!.Event('submit', { cancelable: true }));
    await settle();
    assert.equal(t.doc.getElementById('history-error')?.textContent, 'The start date is after the end date.');
    assert.equal(t.loads.length, 2, 'not loaded');
  });

  it('expands a row to its details and collapses it again', async () => {
    const t = page([job(1), job(2)]);
    await t.p.show();
    const toggle = t.doc.querySelector<HTMLButtonElement>('.history-toggle')!;
    toggle.click();
    assert.equal(t.doc.querySelectorAll('.history-details-row').length, 1);
    assert.equal(t.doc.querySelector('.history-toggle')?.getAttribute('aria-expanded'), 'true');
    t.doc.querySelector<HTMLButtonElement>('.history-toggle')!.click();
    assert.equal(t.doc.querySelectorAll('.history-details-row').length, 0);
  });

  it('retries a failed job only once confirmed, then reloads the page', async () => {
    const failed = job(3, { status: 'failed', error_message: 'boom' });
    const t = page([failed]);
    await t.p.show();
    t.setConfirm(false);
    t.doc.querySelector<HTMLButtonElement>('.history-retry')!.click();
    await settle();
    assert.deepEqual(t.retried, [], 'not confirmed: nothing sent');
    assert.match(t.confirms[0] ?? '', /Retry the enhancement of ticket T-103 \(acme\)/);
    t.setConfirm(true);
    t.doc.querySelector<HTMLButtonElement>('.history-retry')!.click();
    await settle();
    await settle();
    assert.deepEqual(t.retried, [failed.job_id]);
    assert.equal(t.doc.getElementById('history-notice')?.textContent, 'Ticket T-103 is queued again.');
    assert.equal(t.loads.length, 2, 'reloaded');
    t.failRetry(new ApiError(400, 'invalid_request', 'Only a failed job can be retried; this one is pending.'));
    t.doc.querySelector<HTMLButtonElement>('.history-retry')!.click();
    await settle();
    assert.equal(t.doc.getElementById('history-error')?.textContent, 'Only a failed job can be retried; this one is pending.');
  });

  it('opens a job in a chat bound to its tenant with the first message', async () => {
    const t = page([job(4, { tenant_id: 'globex' })]);
    await t.p.show();
    t.doc.querySelector<HTMLButtonElement>('.history-toggle')!.click();
    t.doc.querySelector<HTMLButtonElement>('.history-chat')!.click();
    assert.equal(t.chats.length, 1);
    assert.equal(t.chats[0]?.[0], 'globex');
    assert.match(t.chats[0]?.[1] ?? '', /^Please help me with ticket T-104 of tenant globex\./);
  });
});
