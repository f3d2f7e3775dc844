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
  { files: ['src/cli/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts', 'scripts/**'], rules: { 'no-console': 'off' } },
  // runtime/: how the process uses Node and its libraries (GC, module loading); below everything.
  layer('runtime', ['oci', 'config', 'storage', 'upstream', 'mirror', 'http', 'jobs', 'app', 'cli']),
  layer('oci', ['config', 'storage', 'upstream', 'mirror', 'http', 'jobs', 'app', 'cli']),
  layer('config', ['storage', 'upstream', 'mirror', 'http', 'jobs', 'app', 'cli']),
  layer('storage', ['upstream', 'mirror', 'http', 'jobs', 'app', 'cli']),
  layer('upstream', ['storage', 'mirror', 'http', 'jobs', 'app', 'cli']),
  layer('mirror', ['http', 'jobs', 'app', 'cli']),
  layer('http', ['storage', 'upstream', 'jobs', 'app', 'cli']),
  layer('jobs', ['http', 'app', 'cli']),
  layer('app', ['cli']),
);
