// The only bridge between the sandboxed renderer and main: invoke on
// whitelisted contract channels and subscribe to whitelisted events. No
// ipcRenderer (or anything else from Electron) reaches the page.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { IPC_PREFIX, isChannel, isEventChannel, type EtcdeskBridge, type Envelope } from '../contract/index';

const bridge: EtcdeskBridge = {
  invoke(channel: string, req: unknown): Promise<Envelope<unknown>> {
    if (!isChannel(channel)) return Promise.resolve({ ok: false, error: { code: -1, message: `channel not allowed: ${channel}` } });
    return ipcRenderer.invoke(`${IPC_PREFIX}invoke`, channel, req) as Promise<Envelope<unknown>>;
  },
  on(event: string, listener: (payload: unknown) => void): () => void {
    if (!isEventChannel(event)) throw new Error(`event not allowed: ${event}`);
    const wrapped = (_e: IpcRendererEvent, payload: unknown): void => listener(payload);
    ipcRenderer.on(IPC_PREFIX + event, wrapped);
    return () => ipcRenderer.removeListener(IPC_PREFIX + event, wrapped);
  },
};

contextBridge.exposeInMainWorld('etcdesk', bridge);
