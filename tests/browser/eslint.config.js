// ESLint flat config for the dashboard's JavaScript (src/architect/web/static/**/*.js): plain ES
// modules run by the browser as they are, no build step. It lives here, next to the test-only
// node_modules its imports resolve from; `make lint-js` runs it from the repository root.
import js from "@eslint/js";
import globals from "globals";

export default [
  {
    files: ["src/architect/web/static/**/*.js"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: "module",
      globals: globals.browser,
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      ...js.configs.recommended.rules,
      eqeqeq: ["error", "always"],
      "no-unused-vars": ["error", { args: "after-used", caughtErrors: "none" }],
      "prefer-const": "error",
      "no-var": "error",
    },
  },
];
