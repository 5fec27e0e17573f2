// The only bridge between the sandboxed renderer and main (bridge.ts): invoke
// on whitelisted contract channels and subscribe to whitelisted events.
import { contextBridge, ipcRenderer } from 'electron';
import { createBridge } from './bridge';

contextBridge.exposeInMainWorld('etcdesk', createBridge(ipcRenderer));
