// A CodeMirror 6 editor for Python with line numbers, and a way to mark
// one line as the place of an error.
import { useEffect, useRef } from 'preact/hooks';
import { basicSetup } from 'codemirror';
import { python } from '@codemirror/lang-python';
import { EditorState, StateEffect, StateField } from '@codemirror/state';
import { Decoration, EditorView } from '@codemirror/view';

const setErrorLine = StateEffect.define();
const errorLine = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    for (const e of tr.effects)
      if (e.is(setErrorLine)) {
        if (!e.value) return Decoration.none;
        const line = tr.state.doc.line(Math.min(Math.max(1, e.value), tr.state.doc.lines));
        return Decoration.set([Decoration.line({ class: 'cm-error-line', attributes: { 'data-error-line': String(e.value) } }).range(line.from)]);
      }
    return tr.docChanged ? Decoration.none : deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

const theme = EditorView.theme({
  '&': { fontSize: '13px', border: '1px solid #cbd5e1', borderRadius: '8px', background: '#fff' },
  '&.cm-focused': { outline: '2px solid #4338ca', outlineOffset: '1px' },
  // The editor grows with its code and wraps long lines: no inner scroll area
  // that a keyboard user could not reach.
  '.cm-scroller': { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace', minHeight: '96px' },
  '.cm-gutters': { background: '#f8fafc', borderRight: '1px solid #e2e8f0', color: '#64748b' },
  '.cm-error-line': { background: '#fee2e2', boxShadow: 'inset 3px 0 0 #dc2626' },
});

export function PyEditor({ value, onChange, label, id, errorAt }) {
  const host = useRef();
  const view = useRef();
  const cb = useRef(onChange);
  cb.current = onChange;
  useEffect(() => {
    view.current = new EditorView({
      parent: host.current,
      state: EditorState.create({
        doc: value,
        extensions: [
          basicSetup,
          python(),
          theme,
          EditorView.lineWrapping,
          errorLine,
          EditorView.contentAttributes.of({ 'aria-label': label, id }),
          EditorView.updateListener.of((u) => u.docChanged && cb.current(u.state.doc.toString())),
        ],
      }),
    });
    return () => view.current.destroy();
  }, []);
  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== value) v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value } });
  }, [value]);
  useEffect(() => {
    view.current?.dispatch({ effects: setErrorLine.of(errorAt || 0) });
  }, [errorAt]);
  return <div class="editor" ref={host} data-editor={id} />;
}
