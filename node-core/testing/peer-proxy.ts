// A TCP proxy to put in front of a member's peer port, so a test can cut the
// network to that member without stopping its process (SIGSTOP freezes the
// member's own clock too, which hides what a live but isolated member does,
// e.g. serve stale serializable reads or campaign).
//
// Only traffic *into* the member passes through its proxy: the member dials
// its peers' advertised URLs, which are their proxies. So `cut()` on one
// proxy is an asymmetric partition (the member's messages still go out, no
// answers or appends come in); raft's check-quorum turns that into a full
// loss of leadership, which is what the tests rely on.
import net from 'node:net';

export type CutMode =
  /** Bytes are held, not forwarded, until heal(): a partition under which TCP survives (packets delayed). */
  | 'hold'
  /** Every connection is reset and new ones are closed at once: a link that fails loudly. */
  | 'reset';

export class PeerProxy {
  private server: net.Server | null = null;
  private readonly conns = new Set<{ a: net.Socket; b: net.Socket | null; held: Buffer[][]; flush(): void }>();
  private mode: CutMode | null = null;
  port = 0;

  private constructor(readonly targetPort: number) {}

  /** Listens on 127.0.0.1:listenPort (0: any free port) and forwards to 127.0.0.1:targetPort. */
  static async start(targetPort: number, listenPort = 0): Promise<PeerProxy> {
    const p = new PeerProxy(targetPort);
    await p.listen(listenPort);
    return p;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get isCut(): boolean {
    return this.mode !== null;
  }

  private listen(port: number): Promise<void> {
    const server = net.createServer((a) => this.accept(a));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        const addr = server.address();
        this.port = typeof addr === 'object' && addr ? addr.port : 0;
        resolve();
      });
    });
  }

  private accept(a: net.Socket): void {
    a.setNoDelay(true);
    if (this.mode === 'reset') {
      a.resetAndDestroy();
      return;
    }
    // held[0]: bytes towards the member, held[1]: bytes back to the dialer.
    const conn = {
      a,
      b: null as net.Socket | null,
      held: [[], []] as Buffer[][],
      flush: (): void => {
        if (!conn.b) connectUpstream();
        for (const c of conn.held[0].splice(0)) conn.b!.write(c);
        for (const c of conn.held[1].splice(0)) a.write(c);
      },
    };
    this.conns.add(conn);
    const close = (): void => {
      this.conns.delete(conn);
      a.destroy();
      conn.b?.destroy();
    };
    const connectUpstream = (): void => {
      const b = net.connect(this.targetPort, '127.0.0.1');
      b.setNoDelay(true);
      conn.b = b;
      b.on('data', (c: Buffer) => {
        if (this.mode) conn.held[1].push(c);
        else a.write(c);
      });
      b.on('error', close);
      b.on('close', close);
    };
    a.on('data', (c: Buffer) => {
      if (this.mode || !conn.b) conn.held[0].push(c);
      else conn.b.write(c);
    });
    a.on('error', close);
    a.on('close', close);
    // A connection opened during a hold waits, unconnected, for heal().
    if (!this.mode) connectUpstream();
  }

  /** Stops traffic into the member. */
  cut(mode: CutMode = 'hold'): void {
    this.mode = mode;
    if (mode === 'reset') {
      for (const c of [...this.conns]) {
        c.a.resetAndDestroy();
        c.b?.destroy();
      }
      this.conns.clear();
    }
  }

  /** Restores traffic; held bytes are delivered in order. */
  heal(): void {
    this.mode = null;
    for (const c of this.conns) c.flush();
  }

  async close(): Promise<void> {
    for (const c of this.conns) {
      c.a.destroy();
      c.b?.destroy();
    }
    this.conns.clear();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
