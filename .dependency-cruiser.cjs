// Dependency rules for src/ (DESIGN.md "Layout and dependency direction"), checked by
// `npm run lint` via `depcruise src --config .dependency-cruiser.cjs`.
// The protocol core (noise, tunnel) stays sans-I/O: it never reaches up into control, tun or the
// CLI, and only the driver and the I/O seam may touch node built-ins beyond crypto and workers.

/** The core: everything the protocol is made of. */
const CORE = '^src/(noise|tunnel)/';
/** Node built-ins the core may use, with or without the `node:` prefix. */
const CORE_BUILTINS = '^(node:)?(crypto|worker_threads)$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make initialisation order fragile and hide layering mistakes.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-not-to-outer-layers',
      severity: 'error',
      comment: 'noise/ and tunnel/ must not import control/, tun/ or the CLI (composition root).',
      from: { path: CORE },
      to: { path: ['^src/control/', '^src/tun/', '^src/cli\\.ts$'] },
    },
    {
      name: 'core-only-crypto-builtins',
      severity: 'error',
      comment:
        'The sans-I/O core may use only node:crypto and node:worker_threads; sockets, files and ' +
        'timers belong to tunnel/driver.ts and tunnel/io.ts.',
      from: { path: CORE, pathNot: '^src/tunnel/(driver|io)\\.ts$' },
      to: { dependencyTypes: ['core'], pathNot: CORE_BUILTINS },
    },
    {
      name: 'noise-not-to-tunnel',
      severity: 'error',
      comment: 'noise/ is the lower layer: tunnel/ builds on it, never the other way.',
      from: { path: '^src/noise/' },
      to: { path: '^src/tunnel/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve would fail at run time (tsc emits it anyway).',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/tun/native/' },
    // Type-only imports count: a cycle through types is still a layering mistake.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
