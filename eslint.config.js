// ESLint flat config: typescript-eslint's type-checked rules over src, test and bench (run by
// `npm run lint`). Formatting is Prettier's job, so no stylistic rules here.
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'build/', 'node_modules/', 'scripts/*.mjs', 'bench-results/']),
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      // tsc's noUnusedLocals/noUnusedParameters already fail the build; `_x` marks intent.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // Numbers and booleans in template strings are normal in messages and logs.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true },
      ],
      // Callbacks handed to node APIs (event emitters, timers) may be async by design.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      // Our code reads typed arrays with `!` on purpose (noUncheckedIndexedAccess is off, but
      // other tsconfig setups may not be); this rule would flag each of those.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
    },
  },
  {
    // node:test's `test`/`t.test` return promises that the runner tracks itself.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
    },
  },
);
