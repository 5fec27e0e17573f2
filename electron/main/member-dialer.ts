// How this machine reaches one member by the client URL the cluster advertises
// for it (MemberList): directly, or, behind an SSH tunnel, through a loopback
// forward of the tunnel (the advertised address is usually only reachable from
// the bastion). Everything that talks to members one by one (the doctor, the
// space plan, the cluster view, per-member maintenance) dials through this.
import { EtcdClient } from '../../node-core/index';

export interface MemberRoute {
  /** The URL to dial from here. */
  url: string;
  /** The name TLS must verify when `url` is not the member's own (a tunnel's loopback listener). */
  serverName?: string;
}

/** Resolves a member's advertised client URL to where this machine dials it. */
export type MemberDialer = (memberUrl: string) => Promise<MemberRoute>;

/** No tunnel: the advertised URL is dialled as it is. */
export const directDialer: MemberDialer = async (url) => ({ url });

/** The TLS options for a route: the connection's, with the member's own name to verify when routed. */
export function routeTls(client: EtcdClient, route: MemberRoute): EtcdClient['options']['tls'] {
  const tls = client.options.tls;
  if (!route.serverName || (!tls && !/^https:/i.test(route.url))) return tls;
  return { ...tls, serverName: route.serverName };
}

/** A client on one member (by its advertised URL) with the connection's credentials and TLS. */
export async function memberClient(client: EtcdClient, dial: MemberDialer, memberUrl: string, timeoutMs?: number): Promise<EtcdClient> {
  const route = await dial(memberUrl);
  return new EtcdClient({ ...client.options, endpoints: [route.url], tls: routeTls(client, route), timeoutMs: timeoutMs ?? client.options.timeoutMs });
}
