// The app's keyboard shortcuts, listed once: the handler, the shortcut sheet (?) and the command
// palette read this table. Single keys and two-key "g" sequences, so nothing collides with the
// browser's own Ctrl/Cmd shortcuts in the shell (Ctrl+K is the one exception every browser leaves to pages).

export type ShortcutAction = 'palette' | 'help' | 'find' | 'new-key' | 'refresh' | 'toggle-theme' | 'view-keys' | 'view-txn' | 'view-leases' | 'view-auth' | 'view-cluster' | 'view-maintenance' | 'view-connections';

export interface Shortcut {
  action: ShortcutAction;
  /** As shown in the sheet: "g k" is g then k. */
  keys: string[];
  label: string;
}

export const SHORTCUTS: Shortcut[] = [
  { action: 'palette', keys: ['Ctrl+K', '⌘K'], label: 'Command palette' },
  { action: 'help', keys: ['?'], label: 'Keyboard shortcuts' },
  { action: 'find', keys: ['/'], label: 'Search keys by prefix' },
  { action: 'new-key', keys: ['n'], label: 'New key' },
  { action: 'refresh', keys: ['r'], label: 'Refresh the current view' },
  { action: 'toggle-theme', keys: ['t'], label: 'Switch light / dark theme' },
  { action: 'view-keys', keys: ['g k'], label: 'Go to Keys' },
  { action: 'view-txn', keys: ['g t'], label: 'Go to Transactions' },
  { action: 'view-leases', keys: ['g l'], label: 'Go to Leases' },
  { action: 'view-auth', keys: ['g u'], label: 'Go to Users & Roles' },
  { action: 'view-cluster', keys: ['g c'], label: 'Go to Cluster' },
  { action: 'view-maintenance', keys: ['g m'], label: 'Go to Maintenance' },
  { action: 'view-connections', keys: ['g o'], label: 'Go to Connections' },
];

/** Keys that only work in one place, listed in the sheet too. */
export const CONTEXT_KEYS: { keys: string; label: string }[] = [
  { keys: '↑ ↓ Home End PgUp PgDn', label: 'Move through the key list (focus it with ↓ from the search box)' },
  { keys: 'Enter / Backspace', label: 'Open a folder / go up one (tree)' },
  { keys: 'Ctrl+S  ⌘S', label: 'Save the value being edited' },
  { keys: 'Enter', label: 'Confirm a dialog' },
  { keys: 'Esc', label: 'Close a dialog or the palette' },
];

/** Typing in a field, an editor or a select: single-key shortcuts must not fire. */
export function isTyping(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  if (!t || !(t instanceof HTMLElement)) return false;
  return t.isContentEditable || !!t.closest('input, textarea, select, [contenteditable=true], .cm-editor');
}

const single: Record<string, ShortcutAction> = { '?': 'help', '/': 'find', n: 'new-key', r: 'refresh', t: 'toggle-theme' };
const afterG: Record<string, ShortcutAction> = { k: 'view-keys', t: 'view-txn', l: 'view-leases', u: 'view-auth', c: 'view-cluster', m: 'view-maintenance', o: 'view-connections' };

/** A keydown → action matcher that remembers a pending "g" for one second. */
export function shortcutMatcher(now: () => number = Date.now): (e: KeyboardEvent) => ShortcutAction | null {
  let gAt: number | null = null;
  return (e) => {
    if ((e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && e.key.toLowerCase() === 'k') return 'palette';
    if (e.ctrlKey || e.metaKey || e.altKey || isTyping(e)) return null;
    if (gAt !== null && now() - gAt < 1000) {
      gAt = null;
      return afterG[e.key] ?? null;
    }
    gAt = null;
    if (e.key === 'g') {
      gAt = now();
      return null;
    }
    return single[e.key] ?? null;
  };
}
