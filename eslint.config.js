// The linter: neostandard (the Standard style, TypeScript included), run by `npm run lint` and CI.
import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**'] }),
  {
    rules: {
      // `void promise;` marks a promise left to run on purpose (its errors are handled where it is made).
      'no-void': ['error', { allowAsStatement: true }],
      // A TypeBox schema and its static type share one name on purpose; TypeScript itself refuses real redeclarations.
      '@typescript-eslint/no-redeclare': 'off'
    }
  }
]
