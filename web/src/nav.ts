// Which page the app shows and to whom. Roles nest (admin ⊃ operator ⊃
// user); the Users and Audit pages are offered to admins, the Plugins,
// Dashboard, Charts and Workers pages to operators and admins. This is convenience, not security: the gateway
// answers 403 to everyone else whatever the page does.

import type { Role } from './protocol';

export type Route = 'chat' | 'users' | 'audit' | 'plugins' | 'dashboard' | 'charts' | 'workers' | 'history' | 'operations' | 'tenants';

export type AdminRoute = Exclude<Route, 'chat'>;

export const ROLES: readonly Role[] = ['user', 'operator', 'admin'];

export const ROUTE_PATHS: Record<Route, string> = {
  chat: '/',
  users: '/admin/users',
  audit: '/admin/audit',
  plugins: '/admin/plugins',
  dashboard: '/admin/dashboard',
  charts: '/admin/charts',
  workers: '/admin/workers',
  history: '/admin/history',
  operations: '/admin/operations',
  tenants: '/admin/tenants',
};

/** The least role each admin page is for (the gateway's rule for the API behind it). */
export const ROUTE_ROLES: Record<AdminRoute, Role> = {
  users: 'admin',
  audit: 'admin',
  plugins: 'operator',
  dashboard: 'operator',
  charts: 'operator',
  workers: 'operator',
  // The enhancement history (and its retry and export) is for operators;
  // pausing, clearing the queue and reloading configurations for admins.
  history: 'operator',
  operations: 'admin',
  // Tenants, their credentials, uploads and imports are for admins.
  tenants: 'admin',
};

/** A role's place in the hierarchy; an unknown role is -1, below `user`, so it is granted nothing. */
function rank(role: string): number {
  return ROLES.indexOf(role as Role);
}

/** Whether `role` includes everything `required` may do. */
export function hasRole(role: string, required: Role): boolean {
  return rank(role) >= rank(required);
}

/** Whether `role` may open `route`; the chat is everyone's. */
export function mayOpen(route: Route, role: string): boolean {
  return route === 'chat' || hasRole(role, ROUTE_ROLES[route]);
}

/** The admin links in the header: shown to anyone who may open at least one admin page. */
export function showsAdminNav(role: string): boolean {
  return (Object.keys(ROUTE_ROLES) as AdminRoute[]).some((route) => mayOpen(route, role));
}

/**
 * Hides every page link (`a[data-route]`) under `root` that `role` may not
 * open, and shows the others, so an operator sees Plugins but not Users.
 */
export function showRouteLinks(root: ParentNode, role: string): void {
  for (const link of root.querySelectorAll<HTMLAnchorElement>('a[data-route]')) {
    const route = link.dataset.route;
    link.hidden = !(route !== undefined && route in ROUTE_PATHS && mayOpen(route as Route, role));
  }
}

/**
 * The page for `pathname` as seen by `role`. Anything unknown is the chat
 * (the gateway serves the app for every path), and so is an admin page for
 * anyone who may not see it.
 */
export function routeFor(pathname: string, role: string): Route {
  const path = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname;
  const route = (Object.keys(ROUTE_PATHS) as Route[]).find((r) => ROUTE_PATHS[r] === path) ?? 'chat';
  return mayOpen(route, role) ? route : 'chat';
}
