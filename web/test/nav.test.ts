import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasRole, mayOpen, routeFor, showRouteLinks, showsAdminNav } from '../src/nav';
import { appDocument } from './page';

describe('roles', () => {
  it('nest: admin includes operator includes user', () => {
    assert.equal(hasRole('admin', 'admin'), true);
    assert.equal(hasRole('admin', 'operator'), true);
    assert.equal(hasRole('admin', 'user'), true);
    assert.equal(hasRole('operator', 'admin'), false);
    assert.equal(hasRole('operator', 'operator'), true);
    assert.equal(hasRole('operator', 'user'), true);
    assert.equal(hasRole('user', 'operator'), false);
    assert.equal(hasRole('user', 'user'), true);
  });

  it('grant nothing to an unknown role', () => {
    assert.equal(hasRole('superuser', 'user'), false);
    assert.equal(hasRole('', 'user'), false);
    assert.equal(hasRole('Admin', 'admin'), false, 'roles are exact, lower-case names');
  });

  it('open Users and Audit to admins, Plugins to operators and admins', () => {
    assert.deepEqual(
      ['admin', 'operator', 'user', 'root'].map((role) => [role, mayOpen('users', role), mayOpen('audit', role), mayOpen('plugins', role), mayOpen('chat', role)]),
      [
        ['admin', true, true, true, true],
        ['operator', false, false, true, true],
        ['user', false, false, false, true],
        ['root', false, false, false, true],
      ],
    );
  });

  it('open the Dashboard and Workers to operators and admins, never to users', () => {
    assert.deepEqual(
      ['admin', 'operator', 'user', 'root'].map((role) => [role, mayOpen('dashboard', role), mayOpen('workers', role)]),
      [
        ['admin', true, true],
        ['operator', true, true],
        ['user', false, false],
        ['root', false, false],
      ],
    );
  });

  it('open the Charts to operators and admins at /admin/charts', () => {
    assert.deepEqual(
      ['admin', 'operator', 'user'].map((role) => mayOpen('charts', role)),
      [true, true, false],
    );
    assert.equal(routeFor('/admin/charts', 'operator'), 'charts');
    assert.equal(routeFor('/admin/charts/', 'admin'), 'charts');
    assert.equal(routeFor('/admin/charts', 'user'), 'chat');
  });

  it('show the admin links to anyone who may open an admin page', () => {
    assert.equal(showsAdminNav('admin'), true);
    assert.equal(showsAdminNav('operator'), true);
    assert.equal(showsAdminNav('user'), false);
    assert.equal(showsAdminNav('root'), false);
  });
});

describe('route links', () => {
  const visible = (doc: Document, ids: string[]) => ids.filter((id) => doc.getElementById(id)?.hidden === false);
  const HEADER = ['nav-users', 'nav-audit', 'nav-plugins', 'nav-dashboard', 'nav-workers'];
  const TABS = ['nav-chat', 'admin-nav-users', 'admin-nav-audit', 'admin-nav-plugins', 'admin-nav-dashboard', 'admin-nav-workers'];

  it('show each role the pages it may open, in the header and the admin tabs', () => {
    const { doc } = appDocument();
    for (const [role, header, tabs] of [
      ['admin', HEADER, TABS],
      ['operator', ['nav-plugins', 'nav-dashboard', 'nav-workers'], ['nav-chat', 'admin-nav-plugins', 'admin-nav-dashboard', 'admin-nav-workers']],
      ['user', [], ['nav-chat']],
      ['admin', HEADER, TABS],
    ] as const) {
      showRouteLinks(doc, role);
      assert.deepEqual(visible(doc, HEADER), header, role);
      assert.deepEqual(visible(doc, TABS), tabs, role);
    }
  });

  it('point at the routes the app knows', () => {
    const { doc } = appDocument();
    assert.equal(doc.getElementById('nav-plugins')?.getAttribute('href'), '/admin/plugins');
    assert.equal(doc.getElementById('admin-nav-plugins')?.getAttribute('href'), '/admin/plugins');
    for (const link of doc.querySelectorAll<HTMLAnchorElement>('a[data-route]')) {
      assert.equal(routeFor(link.getAttribute('href') ?? '', 'admin'), link.dataset.route, link.id);
    }
  });
});

describe('routeFor', () => {
  it('maps the admin paths for admins, with or without a trailing slash', () => {
    assert.equal(routeFor('/admin/users', 'admin'), 'users');
    assert.equal(routeFor('/admin/users/', 'admin'), 'users');
    assert.equal(routeFor('/admin/audit', 'admin'), 'audit');
    assert.equal(routeFor('/admin/plugins', 'admin'), 'plugins');
    assert.equal(routeFor('/', 'admin'), 'chat');
  });

  it('maps the plugins page for operators', () => {
    assert.equal(routeFor('/admin/plugins', 'operator'), 'plugins');
    assert.equal(routeFor('/admin/plugins/', 'operator'), 'plugins');
  });

  it('maps the dashboard and the workers for operators, the chat for users', () => {
    assert.equal(routeFor('/admin/dashboard', 'operator'), 'dashboard');
    assert.equal(routeFor('/admin/workers/', 'admin'), 'workers');
    assert.equal(routeFor('/admin/dashboard', 'user'), 'chat');
    assert.equal(routeFor('/admin/workers', 'user'), 'chat');
  });

  it('shows the chat for anything else, and for admin paths to anyone else', () => {
    assert.equal(routeFor('/admin/users', 'operator'), 'chat');
    assert.equal(routeFor('/admin/audit', 'user'), 'chat');
    assert.equal(routeFor('/admin/plugins', 'user'), 'chat');
    assert.equal(routeFor('/admin', 'admin'), 'chat');
    assert.equal(routeFor('/admin/usersx', 'admin'), 'chat');
    assert.equal(routeFor('/index.html', 'user'), 'chat');
  });
});
