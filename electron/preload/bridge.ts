// The bridge the preload exposes, built over an ipcRenderer-like object so it
// is unit-tested without Electron: invoke only on contract channels, listen
// only to contract events. Nothing else of ipcRenderer reaches the page.
import { ErrorCode, IPC_PREFIX, isChannel, isEventChannel, type EtcdeskBridge, type Envelope } from '../contract/index';

export interface IpcRendererLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
  removeListener(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
}

export function createBridge(ipc: IpcRendererLike): EtcdeskBridge {
  return {
    invoke(channel: string, req: unknown): Promise<Envelope<unknown>> {
      if (!isChannel(channel)) return Promise.resolve({ ok: false, error: { code: ErrorCode.App, message: `channel not allowed: ${channel}` } });
      return ipc.invoke(`${IPC_PREFIX}invoke`, channel, req) as Promise<Envelope<unknown>>;
    },
    on(event: string, listener: (payload: unknown) => void): () => void {
      if (!isEventChannel(event)) throw new Error(`event not allowed: ${event}`);
      // The page's listener gets the payload only, never Electron's event object (it holds `sender`).
      const wrapped = (_e: unknown, payload: unknown): void => listener(payload);
      ipc.on(IPC_PREFIX + event, wrapped);
      return () => void ipc.removeListener(IPC_PREFIX + event, wrapped);
    },
  };
}
