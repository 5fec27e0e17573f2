// CodeMirror pieces shared by the value editor and the revision diff: the language per
// value mode and a theme drawn from the app's CSS variables, so light and dark follow
// the app without reconfiguring the editor.
import { EditorView } from '@codemirror/view';
import type { Extension } from '@codemirror/state';
import { HighlightStyle, syntaxHighlighting } from '@codemirror/language';
import { tags as t } from '@lezer/highlight';
import { json } from '@codemirror/lang-json';
import { yaml } from '@codemirror/lang-yaml';
import type { ValueMode } from './value-format';

export function languageFor(mode: ValueMode): Extension[] {
  if (mode === 'json') return [json()];
  if (mode === 'yaml') return [yaml()];
  return [];
}

const highlight = HighlightStyle.define([
  { tag: [t.propertyName, t.definition(t.propertyName)], color: 'var(--syn-key)' },
  { tag: [t.string, t.special(t.string)], color: 'var(--syn-string)' },
  { tag: [t.number, t.bool, t.null, t.atom], color: 'var(--syn-number)' },
  { tag: [t.keyword, t.typeName], color: 'var(--syn-keyword)' },
  { tag: [t.comment, t.meta, t.punctuation, t.separator, t.brace, t.squareBracket], color: 'var(--syn-punct)' },
  { tag: t.invalid, color: 'var(--danger)' },
]);

export const appTheme: Extension = [
  EditorView.theme({
    '&': { backgroundColor: 'var(--panel)', color: 'var(--text)', fontSize: '12.5px', border: '1px solid var(--border)', borderRadius: '8px' },
    '&.cm-focused': { outline: 'none', borderColor: 'var(--accent)' },
    '.cm-scroller': { fontFamily: 'var(--mono)', lineHeight: '1.5' },
    '.cm-content': { caretColor: 'var(--text)', padding: '8px 0' },
    '.cm-cursor, .cm-dropCursor': { borderLeftColor: 'var(--text)' },
    '.cm-gutters': { backgroundColor: 'var(--panel-2)', color: 'var(--muted)', border: 'none', borderRight: '1px solid var(--border)', borderRadius: '8px 0 0 8px' },
    '.cm-activeLine': { backgroundColor: 'var(--active-line)' },
    '.cm-activeLineGutter': { backgroundColor: 'var(--active-line)', color: 'var(--text)' },
    '&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, ::selection': { backgroundColor: 'var(--selection) !important' },
    '.cm-foldPlaceholder': { backgroundColor: 'var(--accent-soft)', color: 'var(--accent)', border: 'none', padding: '0 6px' },
    '.cm-matchingBracket': { backgroundColor: 'var(--accent-soft)', outline: '1px solid var(--accent)' },
    '.cm-tooltip': { backgroundColor: 'var(--panel)', border: '1px solid var(--border)', color: 'var(--text)' },
    '.cm-panels': { backgroundColor: 'var(--panel-2)', color: 'var(--text)' },
    '.cm-searchMatch': { backgroundColor: 'var(--warn-soft)' },
  }),
  syntaxHighlighting(highlight),
];
