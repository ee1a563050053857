import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      'build/',
      'coverage/',
      '.venv/',
      '.cluster/',
      'reports/',
      '**/*.js',
      '**/*.mjs',
      '**/*.cjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Type-aware rules: typescript-eslint reads the types through the project
    // service (tsconfig.json), as tsc does.
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
      // A promise is awaited, returned, or explicitly `void` (fire and forget,
      // its errors handled where it was started).
      '@typescript-eslint/no-floating-promises': 'error',
      // No promise where a callback's result is ignored (event listeners, timers).
      '@typescript-eslint/no-misused-promises': 'error',
      // `await` of something that is not a promise hides a mistake.
      '@typescript-eslint/await-thenable': 'error',
      // A `for...in` over an array, and implied eval, are mistakes here.
      '@typescript-eslint/no-for-in-array': 'error',
      '@typescript-eslint/no-implied-eval': 'error',
      // Only Error objects are thrown and rejected with.
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
    },
  },
);
