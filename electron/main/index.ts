// Electron entry: lifecycle, the window, the menu, and the contract's handlers
// on ipcMain. All etcd work happens in app-core, shared with the browser shell.
import { app, BrowserWindow, dialog, ipcMain, Menu, nativeTheme, safeStorage, session, shell, type MenuItemConstructorOptions, type WebContents } from 'electron';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { IPC_PREFIX, type EventChannel, type EventMap, type MenuAction } from '../contract/index';
import { createAppCore, type AppCore } from './app-core';
import { handleInvoke } from './ipc-guard';
import { KeychainSecrets } from './secrets';

const here = path.dirname(fileURLToPath(import.meta.url));
let core: AppCore | null = null;
let win: BrowserWindow | null = null;

const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

const senders = new Set<WebContents>();
function broadcast<E extends EventChannel>(event: E, payload: EventMap[E]): void {
  for (const wc of senders) if (!wc.isDestroyed()) wc.send(IPC_PREFIX + event, payload);
}

function menuAction(action: MenuAction): void {
  win?.webContents.send(`${IPC_PREFIX}menu:action`, { action });
}

function buildMenu(): void {
  const isMac = process.platform === 'darwin';
  const template: MenuItemConstructorOptions[] = [
    ...(isMac ? [{ role: 'appMenu' as const }] : []),
    {
      label: 'File',
      submenu: [
        { label: 'Connections…', accelerator: 'CmdOrCtrl+Shift+C', click: () => menuAction('connect') },
        { label: 'New Key…', accelerator: 'CmdOrCtrl+N', click: () => menuAction('new-key') },
        { type: 'separator' },
        // The renderer runs both flows (progress bar, result with size and sha256) through the
        // contract channels; main's native dialogs pick the files (chooseSnapshotPath / chooseRestorePath).
        { label: 'Export Backup…', accelerator: 'CmdOrCtrl+Shift+E', click: () => menuAction('export-backup') },
        { label: 'Restore Backup…', click: () => menuAction('restore-backup') },
        { type: 'separator' },
        isMac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        { label: 'Keys', accelerator: 'CmdOrCtrl+1', click: () => menuAction('view-keys') },
        { label: 'Transactions', accelerator: 'CmdOrCtrl+2', click: () => menuAction('view-txn') },
        { label: 'Leases', accelerator: 'CmdOrCtrl+3', click: () => menuAction('view-leases') },
        { label: 'Users & Roles', accelerator: 'CmdOrCtrl+4', click: () => menuAction('view-auth') },
        { label: 'Cluster', accelerator: 'CmdOrCtrl+5', click: () => menuAction('view-cluster') },
        { label: 'Maintenance', accelerator: 'CmdOrCtrl+6', click: () => menuAction('view-maintenance') },
        { type: 'separator' },
        { label: 'Find Keys', accelerator: 'CmdOrCtrl+F', click: () => menuAction('find') },
        { label: 'Refresh', accelerator: 'CmdOrCtrl+R', click: () => menuAction('refresh') },
        { label: 'Toggle Dark Mode', accelerator: 'CmdOrCtrl+Shift+D', click: () => menuAction('toggle-theme') },
        { type: 'separator' },
        { role: 'toggleDevTools' },
        { role: 'togglefullscreen' },
      ],
    },
    { role: 'windowMenu' },
    {
      role: 'help',
      submenu: [
        { label: 'About Etcdesk', click: () => void dialog.showMessageBox({ message: `Etcdesk ${app.getVersion()}`, detail: `Embedded engine: ${core?.info.features.embeddedEngine}` }) },
        { label: 'etcd Documentation', click: () => void shell.openExternal('https://etcd.io/docs/') },
      ],
    },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}

function createWindow(): void {
  win = new BrowserWindow({
    width: 1320,
    height: 840,
    minWidth: 900,
    minHeight: 560,
    title: 'Etcdesk',
    backgroundColor: nativeTheme.shouldUseDarkColors ? '#11151c' : '#f6f7f9',
    show: false,
    webPreferences: {
      preload: path.join(here, '../preload/index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
    },
  });
  const wc = win.webContents;
  senders.add(wc);
  wc.on('destroyed', () => {
    senders.delete(wc);
    core?.manager.closeStreamsOf(String(wc.id));
  });
  win.once('ready-to-show', () => win?.show());
  // The app never navigates or opens windows; links go to the system browser.
  wc.setWindowOpenHandler(({ url }) => {
    if (/^https:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  wc.on('will-navigate', (e) => e.preventDefault());
  const devUrl = process.env.ELECTRON_RENDERER_URL;
  if (devUrl) void win.loadURL(devUrl);
  else void win.loadFile(path.join(here, '../renderer/index.html'));
}

// One instance per user: a second one would host a second node on the same data folder.
if (!app.requestSingleInstanceLock()) app.quit();
app.on('second-instance', () => {
  if (!win) return;
  if (win.isMinimized()) win.restore();
  win.focus();
});

void app.whenReady().then(() => {
  session.defaultSession.webRequest.onHeadersReceived((details, cb) => {
    cb({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CSP] } });
  });
  session.defaultSession.setPermissionRequestHandler((_wc, _perm, cb) => cb(false));
  core = createAppCore({
    dataDir: app.getPath('userData'),
    mode: 'electron',
    version: app.getVersion(),
    // Saved passwords (the embedded node's root among them) encrypted with the OS keychain.
    secrets: new KeychainSecrets(path.join(app.getPath('userData'), 'secrets.json'), safeStorage),
    broadcast,
    chooseSnapshotPath: async () => {
      const r = await dialog.showSaveDialog(win ?? new BrowserWindow({ show: false }), {
        title: 'Save etcd snapshot',
        defaultPath: `etcd-snapshot-${new Date().toISOString().slice(0, 10)}.db`,
        filters: [{ name: 'etcd snapshot', extensions: ['db'] }],
      });
      return r.canceled || !r.filePath ? null : r.filePath;
    },
    chooseRestorePath: async () => {
      const r = await dialog.showOpenDialog(win ?? new BrowserWindow({ show: false }), {
        title: 'Restore etcd snapshot into a new local node',
        properties: ['openFile'],
        filters: [{ name: 'etcd snapshot', extensions: ['db'] }, { name: 'All files', extensions: ['*'] }],
      });
      return r.canceled || !r.filePaths[0] ? null : r.filePaths[0];
    },
  });
  // Channel whitelist, then only our own window's top frame (ipc-guard), then the request's schema (dispatch).
  ipcMain.handle(`${IPC_PREFIX}invoke`, handleInvoke(() => core?.handlers ?? null, () => win));
  buildMenu();
  createWindow();
  void core.manager.connect('embedded');
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});

let quitting = false;
app.on('before-quit', (e) => {
  if (quitting || !core) return;
  e.preventDefault();
  quitting = true;
  void core.shutdown().finally(() => app.quit());
});
app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});
