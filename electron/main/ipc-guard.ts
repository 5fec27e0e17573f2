// The Electron side of the IPC door, without Electron (so it is unit-tested):
// which sender may call in, and the one invoke handler that checks the
// channel and the sender before dispatch validates the request.
import { ErrorCode, IPC_PREFIX, isChannel, type Envelope } from '../contract/index';
import { dispatch, type Handlers } from './handlers';

/** The parts of Electron's IpcMainInvokeEvent and BrowserWindow the check reads. */
export interface SenderLike {
  readonly id: number;
  readonly mainFrame: unknown;
  send(channel: string, payload: unknown): void;
}
export interface InvokeEventLike {
  readonly sender: SenderLike;
  readonly senderFrame: unknown;
}

/**
 * Only our own window's top frame may call in: not another window, not an
 * iframe inside ours (a frame from anywhere else must never reach the handlers).
 */
export function isTrustedSender(event: InvokeEventLike, window: { webContents: SenderLike } | null): boolean {
  return !!window && event.sender === window.webContents && event.senderFrame === window.webContents.mainFrame && !!event.senderFrame;
}

/** ipcMain.handle(`${IPC_PREFIX}invoke`, …)'s body. */
export function handleInvoke(handlers: () => Handlers | null, window: () => { webContents: SenderLike } | null) {
  return async (event: InvokeEventLike, channel: unknown, req: unknown): Promise<Envelope<unknown>> => {
    if (!isChannel(channel)) return { ok: false, error: { code: ErrorCode.App, message: `unknown channel ${String(channel)}` } };
    if (!isTrustedSender(event, window())) return { ok: false, error: { code: ErrorCode.App, message: 'forbidden sender' } };
    const h = handlers();
    if (!h) return { ok: false, error: { code: ErrorCode.App, message: 'the app is still starting' } };
    return dispatch(h, channel, req, { clientId: String(event.sender.id), emit: (e, p) => event.sender.send(IPC_PREFIX + e, p) });
  };
}
