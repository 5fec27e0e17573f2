// The renderer's one way out: the contract-typed API, backed by the preload
// bridge inside Electron or by HTTP + server-sent events in the browser shell.
import { ContractError, SHELL_TOKEN_HEADER, type Channel, type EtcdeskApi, type EtcdeskBridge, type Envelope, type EventChannel, type EventMap, type Req, type Res } from '../../../electron/contract/index';

let current: EtcdeskApi | null = null;

export function setApi(api: EtcdeskApi): void {
  current = api;
}

export function useApi(): EtcdeskApi {
  if (!current) throw new Error('API not initialised');
  return current;
}

function unwrap<T>(env: Envelope<unknown>): T {
  if (env.ok) return env.value as T;
  throw new ContractError(env.error.code, env.error.message, env.error.etcdError);
}

export function bridgeApi(bridge: EtcdeskBridge): EtcdeskApi {
  return {
    async invoke<C extends Channel>(channel: C, req: Req<C>): Promise<Res<C>> {
      return unwrap<Res<C>>(await bridge.invoke(channel, req));
    },
    on<E extends EventChannel>(event: E, listener: (p: EventMap[E]) => void): () => void {
      return bridge.on(event, (p) => listener(p as EventMap[E]));
    },
  };
}

export function shellApi(token: string, base = ''): EtcdeskApi {
  const session = Math.random().toString(36).slice(2);
  const listeners = new Map<string, Set<(p: unknown) => void>>();
  let source: EventSource | null = null;
  const ensureSource = (): void => {
    if (source) return;
    source = new EventSource(`${base}/api/events?token=${encodeURIComponent(token)}&session=${session}`);
    for (const ev of listeners.keys()) attach(ev);
  };
  const attached = new Set<string>();
  const attach = (ev: string): void => {
    if (!source || attached.has(ev)) return;
    attached.add(ev);
    source.addEventListener(ev, (e) => {
      const payload: unknown = JSON.parse((e as MessageEvent<string>).data);
      for (const l of listeners.get(ev) ?? []) l(payload);
    });
  };
  return {
    async invoke<C extends Channel>(channel: C, req: Req<C>): Promise<Res<C>> {
      ensureSource();
      const r = await fetch(`${base}/api/invoke/${channel}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', [SHELL_TOKEN_HEADER]: token, 'x-etcdesk-session': session },
        body: JSON.stringify(req),
      });
      if (!r.ok) throw new ContractError(-1, `shell refused the request (${r.status}): ${await r.text()}`);
      return unwrap<Res<C>>((await r.json()) as Envelope<unknown>);
    },
    on<E extends EventChannel>(event: E, listener: (p: EventMap[E]) => void): () => void {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      const l = listener as (p: unknown) => void;
      set.add(l);
      ensureSource();
      attach(event);
      return () => set.delete(l);
    },
  };
}

/** The token comes in the URL fragment once; it is kept for reloads and removed from the address bar. */
export function detectApi(): EtcdeskApi {
  if (window.etcdesk) return bridgeApi(window.etcdesk);
  const m = /token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('etcdesk-token', decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname);
  }
  const token = sessionStorage.getItem('etcdesk-token') ?? '';
  return shellApi(token);
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
