import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasRole, routeFor, showsAdminNav } from '../src/nav';

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

  it('show the admin links to admins only', () => {
    assert.equal(showsAdminNav('admin'), true);
    assert.equal(showsAdminNav('operator'), false);
    assert.equal(showsAdminNav('user'), false);
    assert.equal(showsAdminNav('root'), false);
  });
});

describe('routeFor', () => {
  it('maps the admin paths for admins, with or without a trailing slash', () => {
    assert.equal(routeFor('/admin/users', 'admin'), 'users');
    assert.equal(routeFor('/admin/users/', 'admin'), 'users');
    assert.equal(routeFor('/admin/audit', 'admin'), 'audit');
    assert.equal(routeFor('/', 'admin'), 'chat');
  });

  it('shows the chat for anything else, and for admin paths to anyone else', () => {
    assert.equal(routeFor('/admin/users', 'operator'), 'chat');
    assert.equal(routeFor('/admin/audit', 'user'), 'chat');
    assert.equal(routeFor('/admin', 'admin'), 'chat');
    assert.equal(routeFor('/admin/usersx', 'admin'), 'chat');
    assert.equal(routeFor('/index.html', 'user'), 'chat');
  });
});
