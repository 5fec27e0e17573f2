// Connections: the saved profiles (any can be renamed, given credentials, removed) and the live connection.
import { ContractError } from '../../contract/index';
import type { HandlerDeps, HandlersFor } from './context';

export function connectionHandlers(deps: HandlerDeps): HandlersFor<'app:info' | 'conn:list' | 'conn:save' | 'conn:delete' | 'conn:sign-in' | 'conn:connect' | 'conn:disconnect' | 'conn:status' | 'conn:export' | 'conn:import'> {
  const m = deps.manager;
  return {
    'app:info': async () => deps.info,
    'conn:list': async () => deps.profiles.list(),
    'conn:save': async (p) => deps.profiles.save(p),
    'conn:delete': async ({ id }) => {
      if (!deps.profiles.get(id)) throw new ContractError(-1, `unknown connection ${id}`);
      await m.remove(id);
      return { ok: true };
    },
    'conn:sign-in': async ({ id, username, password, remember }) => {
      deps.profiles.setCredentials(id, username, password, remember);
      return m.connect(id);
    },
    'conn:connect': async ({ id }) => m.connect(id),
    'conn:disconnect': async () => m.disconnect(),
    'conn:status': async () => m.status(),
    'conn:export': async () => deps.profiles.exportProfiles(),
    'conn:import': async ({ text }) => deps.profiles.importProfiles(text),
  };
}
