// Which page the app shows and to whom. Roles nest (admin ⊃ operator ⊃
// user); the admin pages are offered to admins only. This is convenience, not
// security: the gateway answers 403 to everyone else whatever the page does.

import type { Role } from './protocol';

export type Route = 'chat' | 'users' | 'audit';

export const ROLES: readonly Role[] = ['user', 'operator', 'admin'];

export const ROUTE_PATHS: Record<Route, string> = {
  chat: '/',
  users: '/admin/users',
  audit: '/admin/audit',
};

/** A role's place in the hierarchy; an unknown role is -1, below `user`, so it is granted nothing. */
function rank(role: string): number {
  return ROLES.indexOf(role as Role);
}

/** Whether `role` includes everything `required` may do. */
export function hasRole(role: string, required: Role): boolean {
  return rank(role) >= rank(required);
}

/** The admin links in the header: shown to admins only. */
export function showsAdminNav(role: string): boolean {
  return hasRole(role, 'admin');
}

/**
 * The page for `pathname` as seen by `role`. Anything unknown is the chat
 * (the gateway serves the app for every path), and so is an admin page for
 * anyone who may not see it.
 */
export function routeFor(pathname: string, role: string): Route {
  const path = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname;
  const route = path === ROUTE_PATHS.users ? 'users' : path === ROUTE_PATHS.audit ? 'audit' : 'chat';
  if (route !== 'chat' && !hasRole(role, 'admin')) return 'chat';
  return route;
}
