import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Layer boundaries from DESIGN.md: a module never imports from a layer to its left.
const layer = (dir, forbidden) => ({
  files: [`src/${dir}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: forbidden.map((f) => ({ group: [`**/${f}/**`, `../${f}/*`, `../../${f}/*`], message: `${dir}/ must not import ${f}/ (see DESIGN.md layers)` })) },
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
  // The web console (ui/src): browser code, typed by ui/tsconfig.json (lib DOM), which checks its
  // globals in place of no-undef. Its build script (scripts/*.mjs) is plain Node.
  { files: ['ui/src/**/*.{ts,tsx}'], languageOptions: { globals: { window: 'readonly', document: 'readonly', location: 'readonly', history: 'readonly', navigator: 'readonly', fetch: 'readonly', EventSource: 'readonly', matchMedia: 'readonly', getComputedStyle: 'readonly', ResizeObserver: 'readonly' } } },
  { files: ['scripts/**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  { files: ['scripts/**/*.mjs'], languageOptions: { globals: { process: 'readonly', console: 'readonly' } } },
  // A file a newcomer can read in one sitting (issue 19): split by role before it grows past this.
  { files: ['src/**/*.ts'], rules: { 'max-lines': ['error', { max: 350, skipBlankLines: false, skipComments: false }] } },
  { files: ['src/cli/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts', 'scripts/**'], rules: { 'no-console': 'off' } },
  // runtime/: how the process uses Node and its libraries (GC, module loading); below everything.
  layer('runtime', ['oci', 'config', 'storage', 'upstream', 'mirror', 'http', 'jobs', 'app', 'cli', 'auth']),
  layer('oci', ['config', 'storage', 'upstream', 'mirror', 'http', 'jobs', 'app', 'cli', 'auth']),
  layer('config', ['storage', 'upstream', 'mirror', 'http', 'jobs', 'app', 'cli', 'auth']),
  layer('storage', ['upstream', 'mirror', 'http', 'jobs', 'app', 'cli', 'auth']),
  layer('upstream', ['storage', 'mirror', 'http', 'jobs', 'app', 'cli', 'auth']),
  layer('mirror', ['http', 'jobs', 'app', 'cli', 'auth']),
  layer('http', ['storage', 'upstream', 'jobs', 'app', 'cli']),
  layer('jobs', ['http', 'app', 'cli', 'auth']),
  layer('app', ['cli']),
  // logging/ and metrics/: below everything that uses them; they take values, never the layers' types.
  layer('logging', ['oci', 'config', 'storage', 'upstream', 'mirror', 'http', 'jobs', 'app', 'cli', 'auth']),
  layer('metrics', ['oci', 'config', 'storage', 'upstream', 'mirror', 'http', 'jobs', 'app', 'cli', 'auth']),
  // auth/: client logins and access rules, used by http/ and app/; it reads config/, logging/, oci/.
  layer('auth', ['storage', 'upstream', 'mirror', 'http', 'jobs', 'app', 'cli']),
  // cli/: the top; it may import any layer.
  layer('cli', []),
);
