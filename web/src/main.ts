// Entry point: decides between the sign-in form, the chat and the admin pages
// (`/admin/users`, `/admin/audit`, `/admin/plugins`, `/admin/dashboard`, `/admin/charts`,
// `/admin/workers`, `/admin/history`, `/admin/operations`, `/admin/tenants`; the gateway serves this
// page for any path), and switches between them when the cookie is set or
// goes stale, or the user follows a link in the header.

import './app.css';
import 'uplot/dist/uPlot.min.css';
import { isPlainClick } from './action';
import * as api from './api';
import { ApiError } from './api';
import { AuditLogPage, auditElements } from './audit';
import { BudgetIndicator } from './budget';
import { Chat, chatElements } from './chat';
import { ChartsPage, chartsElements } from './charts';
import { TypedConfirm } from './confirm';
import { DashboardPage, dashboardElements } from './dashboard';
import { HistoryPage, historyElements } from './history';
import { loginElements, setupLogin } from './login';
import { createMarkdownRenderer } from './markdown';
import { hasRole, type Route, ROUTE_PATHS, routeFor, showRouteLinks, showsAdminNav } from './nav';
import { OperationsPage, operationsElements } from './operations';
import { PluginsPage, pluginsElements } from './plugins';
import { TenantsPage, tenantsElements } from './tenants';
import type { User } from './protocol';
import { UsersPage, usersElements } from './users';
import { WorkersPage, workersElements } from './workers';

function byId(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
}

const loginView = byId('login-view');
const chatView = byId('chat-view');
const adminView = byId('admin-view');
const usersSection = byId('users-page');
const auditSection = byId('audit-page');
const pluginsSection = byId('plugins-page');
const dashboardSection = byId('dashboard-page');
const chartsSection = byId('charts-page');
const workersSection = byId('workers-page');
const historySection = byId('history-page');
const operationsSection = byId('operations-page');
const tenantsSection = byId('tenants-page');
const adminNav = byId('admin-nav');

const TITLES: Record<Route, string> = {
  chat: 'csp',
  users: 'Users · csp',
  audit: 'Audit log · csp',
  plugins: 'Plugins · csp',
  dashboard: 'Dashboard · csp',
  charts: 'Charts · csp',
  workers: 'Workers · csp',
  history: 'History · csp',
  operations: 'Operations · csp',
  tenants: 'Tenants · csp',
};

/** The signed-in user; null while the sign-in form shows. */
let me: User | null = null;
/** The chat holds a socket; it is stopped while an admin page shows. */
let chatRunning = false;
/** The chat's query (`?session=…`) when it was left for an admin page, to come back to the same session. */
let chatSearch = '';

const budget = new BudgetIndicator(byId('budget'), api.budget);
const chat = new Chat(chatElements(chatView), {
  onSignedOut: signedOut,
  onAccountChange: (what) => {
    if (what === 'budget') void budget.refresh();
    else void refreshMe();
  },
});
const usersPage = new UsersPage(usersElements(document), {
  list: api.users,
  create: api.createUser,
  update: api.updateUser,
  onSignedOut: signedOut,
  onSelfChanged: () => void refreshMe(),
  currentUserId: () => me?.user_id ?? null,
});
const auditPage = new AuditLogPage(auditElements(document), {
  loadPage: api.auditLog,
  loadUsers: api.users,
  onSignedOut: signedOut,
});
const pluginsPage = new PluginsPage(pluginsElements(document), {
  list: api.plugins,
  activate: api.activatePlugin,
  deactivate: api.deactivatePlugin,
  saveConfig: api.savePluginConfig,
  rescan: api.rescanPlugins,
  onSignedOut: signedOut,
});
/** Remembers each operations page's refresh interval; null where storage is refused. */
function localStore(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}
const dashboardPage = new DashboardPage(dashboardElements(document), {
  load: api.dashboard,
  onSignedOut: signedOut,
  storage: localStore(),
});
const chartsPage = new ChartsPage(chartsElements(document), {
  load: api.charts,
  onSignedOut: signedOut,
  storage: localStore(),
});
const workersElems = workersElements(document);
const workersPage = new WorkersPage(workersElems, {
  load: api.workers,
  logs: api.workerLogs,
  throughput: api.workerThroughput,
  restart: api.restartWorker,
  canRestart: () => me !== null && hasRole(me.role, 'admin'),
  confirm: new TypedConfirm(workersElems.dialog),
  onSignedOut: signedOut,
  storage: localStore(),
});
/** A chat the History page asked for ("Open in chat"), started when the chat shows next. */
let chatIntent: { tenant: string; message: string } | null = null;
const historyPage = new HistoryPage(historyElements(document), {
  load: api.enhancements,
  retry: api.retryEnhancement,
  // Admins may list every tenant; anyone else the ones they may chat about.
  loadTenants: () =>
    Promise.all([
      me !== null && hasRole(me.role, 'admin') ? api.tenants().catch(() => null) : Promise.resolve(null),
      api.chatTenants().catch(() => null),
    ]),
  renderNote: createMarkdownRenderer(window),
  confirm: (message) => window.confirm(message),
  openInChat: (tenant, message) => {
    chatIntent = { tenant, message };
    navigate('chat');
  },
  onSignedOut: signedOut,
});
const operationsElems = operationsElements(document);
const operationsPage = new OperationsPage(operationsElems, {
  processing: api.processing,
  setProcessing: api.setProcessing,
  clearQueue: api.clearQueue,
  reloadConfigs: api.reloadConfigs,
  loadOperations: api.operationsLog,
  confirm: new TypedConfirm(operationsElems.dialog),
  onSignedOut: signedOut,
});
const tenantsPage = new TenantsPage(tenantsElements(document), {
  list: api.tenants,
  toolTypes: api.toolTypes,
  create: api.createTenant,
  update: api.updateTenant,
  remove: api.deleteTenant,
  rotateSecret: api.rotateWebhookSecret,
  testConnection: api.testConnection,
  upload: api.uploadContext,
  startImport: api.startImport,
  importProgress: api.importProgress,
  copy: (text) => navigator.clipboard.writeText(text),
  confirm: (message) => window.confirm(message),
  onSignedOut: signedOut,
});
setupLogin(loginElements(loginView), showSignedIn);

for (const id of ['logout', 'admin-logout']) {
  byId(id).addEventListener('click', () => {
    forget();
    void api.logout().catch(() => undefined).then(showLogin);
  });
}

// Header links switch pages in place; modified clicks are left to the browser (new tab).
document.addEventListener('click', (ev) => {
  const link = (ev.target as Element | null)?.closest?.<HTMLAnchorElement>('a[data-route]');
  const route = link?.dataset.route;
  if (!route || !(route in ROUTE_PATHS) || !isPlainClick(ev)) return;
  ev.preventDefault();
  navigate(route as Route);
});
window.addEventListener('popstate', () => showRoute());

/** Drops everything of the signed-in user: on sign-out, or when the cookie went stale. */
function forget(): void {
  me = null;
  chat.stop();
  chatRunning = false;
  chatSearch = '';
  budget.clear();
  usersPage.clear();
  auditPage.clear();
  pluginsPage.clear();
  dashboardPage.clear();
  chartsPage.clear();
  workersPage.clear();
  historyPage.clear();
  operationsPage.clear();
  tenantsPage.clear();
  chatIntent = null;
}

function signedOut(): void {
  forget();
  showLogin();
}

function showLogin(): void {
  chatView.hidden = true;
  adminView.hidden = true;
  loginView.hidden = false;
  document.title = TITLES.chat;
  byId('login-username').focus();
}

function showSignedIn(user: User): void {
  setUser(user);
  showRoute();
}

function setUser(user: User): void {
  me = user;
  byId('user-name').textContent = user.username;
  byId('admin-user-name').textContent = user.username;
  // Operators see Plugins only; admins every page.
  adminNav.hidden = !showsAdminNav(user.role);
  showRouteLinks(adminNav, user.role);
  showRouteLinks(adminView, user.role);
}

/** Shows the page for the current URL, as the signed-in user may see it. */
function showRoute(): void {
  if (me === null) return;
  const route = routeFor(location.pathname, me.role);
  loginView.hidden = true;
  document.title = TITLES[route];
  // The operations pages refresh only while shown.
  if (route !== 'dashboard') dashboardPage.hide();
  if (route !== 'charts') chartsPage.hide();
  if (route !== 'workers') workersPage.hide();
  if (route !== 'tenants') tenantsPage.hide();
  if (route === 'chat') {
    // The chat keeps its session in the query of the app's root path.
    if (location.pathname !== ROUTE_PATHS.chat) history.replaceState(null, '', `${ROUTE_PATHS.chat}${location.search}`);
    adminView.hidden = true;
    chatView.hidden = false;
    void budget.refresh();
    if (!chatRunning) {
      chatRunning = true;
      const intent = chatIntent;
      chatIntent = null;
      if (intent) void chat.start(null, intent.tenant, intent.message);
      else void chat.start(new URLSearchParams(location.search).get('session'));
    }
    return;
  }
  if (chatRunning) {
    // A hidden chat would keep a socket open and rewrite this page's URL; the session
    // goes on without it, and reopening the chat reattaches from its history.
    chat.stop();
    chatRunning = false;
  }
  chatView.hidden = true;
  adminView.hidden = false;
  usersSection.hidden = route !== 'users';
  auditSection.hidden = route !== 'audit';
  pluginsSection.hidden = route !== 'plugins';
  dashboardSection.hidden = route !== 'dashboard';
  chartsSection.hidden = route !== 'charts';
  workersSection.hidden = route !== 'workers';
  historySection.hidden = route !== 'history';
  operationsSection.hidden = route !== 'operations';
  tenantsSection.hidden = route !== 'tenants';
  for (const link of adminView.querySelectorAll<HTMLAnchorElement>('a[data-route]')) {
    if (link.dataset.route === route) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const page = {
    users: usersPage,
    audit: auditPage,
    plugins: pluginsPage,
    dashboard: dashboardPage,
    charts: chartsPage,
    workers: workersPage,
    history: historyPage,
    operations: operationsPage,
    tenants: tenantsPage,
  }[route];
  void page.show();
  void showSandboxWarning();
}

/** Admin pages warn while agents run unconfined (`CSP_AGENT_SANDBOX=off`). */
async function showSandboxWarning(): Promise<void> {
  const cfg = await api.config().catch(() => null);
  byId('sandbox-warning').hidden = cfg?.agent_sandbox !== 'off';
}

function navigate(route: Route): void {
  if (chatRunning) chatSearch = location.search;
  history.pushState(null, '', route === 'chat' ? `${ROUTE_PATHS.chat}${chatSearch}` : ROUTE_PATHS[route]);
  showRoute();
}

/** Asks who the user is again after their role may have changed, and drops pages they lost. */
async function refreshMe(): Promise<void> {
  let user: User;
  try {
    user = await api.me();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signedOut();
    return;
  }
  if (me === null) return;
  const before = routeFor(location.pathname, me.role);
  setUser(user);
  if (routeFor(location.pathname, user.role) !== before) showRoute();
}

async function boot(): Promise<void> {
  let user: User;
  try {
    user = await api.me();
  } catch {
    // Not signed in (401), or the gateway is unreachable: the form reports that on submit.
    showLogin();
    return;
  }
  showSignedIn(user);
}

void boot();
