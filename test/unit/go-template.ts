/**
 * The subset of Go's text/template (and Helm's functions) that deploy/helm/ uses, so the chart
 * renders in a test where no `helm` binary exists. Anything outside the subset throws, so a
 * template that grows past it fails the test instead of rendering wrong; where `helm` is on the
 * PATH, test/unit/helm-chart.test.ts checks this renderer against it.
 */
import yaml from 'js-yaml';

export type Value = null | boolean | number | string | Value[] | { [k: string]: Value };
type Scope = { dot: Value; vars: Map<string, Value> };

type Node =
  | { t: 'text'; s: string }
  | { t: 'out'; p: string }
  | { t: 'set'; name: string; p: string }
  | { t: 'if' | 'with'; p: string; then: Node[]; else: Node[] };

/** Splits source into text and actions, applying `{{-` / `-}}` whitespace trimming. */
function lex(src: string): Array<{ text: string } | { action: string }> {
  const out: Array<{ text: string } | { action: string }> = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      out.push({ text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let body = src.slice(open + 2);
    if (body.startsWith('- ')) text = text.replace(/\s+$/, '');
    const close = body.indexOf('}}');
    if (close < 0) throw new Error(`unclosed action at ${open}`);
    let action = body.slice(0, close);
    let next = open + 2 + close + 2;
    if (action.startsWith('- ')) action = action.slice(2);
    if (action.endsWith(' -')) {
      action = action.slice(0, -2);
      while (next < src.length && /\s/.test(src[next]!)) next++;
    }
    body = action.trim();
    out.push({ text });
    if (!(body.startsWith('/*') && body.endsWith('*/'))) out.push({ action: body });
    i = next;
  }
  return out;
}

function parse(src: string): Node[] {
  const tokens = lex(src);
  let k = 0;
  // Returns the nodes up to an {{ end }} / {{ else }} (which it leaves for the caller to read).
  const block = (top: boolean): { nodes: Node[]; stop: string } => {
    const nodes: Node[] = [];
    while (k < tokens.length) {
      const tok = tokens[k++]!;
      if ('text' in tok) {
        if (tok.text) nodes.push({ t: 'text', s: tok.text });
        continue;
      }
      const a = tok.action;
      const m = /^(if|with|else|end)\b\s*(.*)$/s.exec(a);
      if (m && (m[1] === 'end' || m[1] === 'else')) {
        if (top) throw new Error(`unexpected {{ ${a} }}`);
        return { nodes, stop: a };
      }
      if (m) {
        nodes.push(branch(m[1] as 'if' | 'with', m[2]!));
        continue;
      }
      const set = /^\$([A-Za-z_]\w*)\s*:=\s*(.+)$/s.exec(a);
      if (set) nodes.push({ t: 'set', name: set[1]!, p: set[2]! });
      else if (/^(range|define|template|include|block|break|continue)\b/.test(a))
        throw new Error(`unsupported action {{ ${a} }}`);
      else nodes.push({ t: 'out', p: a });
    }
    if (!top) throw new Error('missing {{ end }}');
    return { nodes, stop: '' };
  };
  const branch = (t: 'if' | 'with', p: string): Node => {
    const then = block(false);
    const node: Node = { t, p, then: then.nodes, else: [] };
    if (then.stop === 'end') return node;
    const elseIf = /^else\s+(if|with)\s+(.+)$/s.exec(then.stop);
    if (elseIf) node.else = [branch(elseIf[1] as 'if' | 'with', elseIf[2]!)];
    else if (then.stop === 'else') {
      const e = block(false);
      if (e.stop !== 'end') throw new Error(`expected {{ end }}, got {{ ${e.stop} }}`);
      node.else = e.nodes;
    } else throw new Error(`unsupported {{ ${then.stop} }}`);
    return node;
  };
  return block(true).nodes;
}

/** Go template truth: false, 0, nil and empty strings, lists and maps are false. */
function truthy(v: Value): boolean {
  if (v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** Splits on `sep` outside quotes and parentheses. */
function split(s: string, sep: RegExp): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = '';
  let cur = '';
  for (const ch of s) {
    if (quote) {
      cur += ch;
      if (ch === quote && !cur.endsWith(`\\${quote}`)) quote = '';
      continue;
    }
    if (ch === '"' || ch === '`') quote = ch;
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth === 0 && !quote && sep.test(ch)) {
      if (cur.trim()) parts.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) parts.push(cur.trim());
  return parts;
}

function field(v: Value, path: string[]): Value {
  let cur = v;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return null;
    cur = cur[key] ?? null;
  }
  return cur;
}

const str = (v: Value): string => {
  if (v === null) return '';
  if (typeof v === 'object') throw new Error(`cannot print ${JSON.stringify(v)} as text`);
  return String(v);
};

const indent = (n: number, s: string) =>
  s
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');

const FUNCS: Record<string, (...a: Value[]) => Value> = {
  default: (d, v) => (truthy(v ?? null) ? v! : d!),
  quote: (...a) => a.map((v) => JSON.stringify(str(v))).join(' '),
  printf: (fmt, ...a) => {
    let i = 0;
    return str(fmt!).replace(/%[sdv]/g, () => str(a[i++] ?? null));
  },
  toYaml: (v) => yaml.dump(v, { lineWidth: -1 }).replace(/\n$/, ''),
  indent: (n, s) => indent(Number(n), str(s!)),
  nindent: (n, s) => '\n' + indent(Number(n), str(s!)),
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
  not: (a) => !truthy(a!),
};

function evalTerm(term: string, sc: Scope): Value {
  if (term.startsWith('(') && term.endsWith(')')) return evalPipeline(term.slice(1, -1), sc);
  if (term.startsWith('"')) return JSON.parse(term) as string;
  if (/^-?\d+(\.\d+)?$/.test(term)) return Number(term);
  if (term === 'true' || term === 'false') return term === 'true';
  if (term === 'nil') return null;
  if (term === '.') return sc.dot;
  const path = term.split('.');
  if (term.startsWith('.')) return field(sc.dot, path.slice(1));
  if (term.startsWith('$')) {
    const name = path[0]!.slice(1);
    const base = name === '' ? sc.vars.get('') : sc.vars.get(name);
    if (base === undefined) throw new Error(`undefined variable ${path[0]}`);
    return field(base, path.slice(1));
  }
  throw new Error(`unsupported term ${term}`);
}

function evalPipeline(p: string, sc: Scope): Value {
  let piped: Value | undefined;
  for (const cmd of split(p, /\|/)) {
    const args = split(cmd, /\s/);
    const fn = args[0]!;
    let v: Value;
    if (/^[A-Za-z]\w*$/.test(fn) && !['true', 'false', 'nil'].includes(fn)) {
      const f = FUNCS[fn];
      if (!f) throw new Error(`unsupported function ${fn}`);
      const vals = args.slice(1).map((a) => evalTerm(a, sc));
      if (piped !== undefined) vals.push(piped);
      v = f(...vals);
    } else {
      if (args.length !== 1 || piped !== undefined) throw new Error(`cannot evaluate ${cmd}`);
      v = evalTerm(fn, sc);
    }
    piped = v;
  }
  return piped ?? null;
}

function exec(nodes: Node[], sc: Scope): string {
  let out = '';
  for (const n of nodes) {
    if (n.t === 'text') out += n.s;
    else if (n.t === 'out') out += str(evalPipeline(n.p, sc));
    else if (n.t === 'set') sc.vars.set(n.name, evalPipeline(n.p, sc));
    else {
      const v = evalPipeline(n.p, sc);
      if (!truthy(v)) out += exec(n.else, sc);
      else out += exec(n.then, n.t === 'with' ? { dot: v, vars: sc.vars } : sc);
    }
  }
  return out;
}

/** Renders one template with `root` as both `.` and `$`. */
export function renderTemplate(src: string, root: Value): string {
  return exec(parse(src), { dot: root, vars: new Map([['', root]]) });
}
