// ESLint for the web UI (flat config): the React hook rules, jsx-a11y's checks (axe in the E2E
// sees only the pages it visits; these see every component), typescript-eslint, and the import
// boundaries that keep features apart: a feature imports `@/api`, `@/components`, `@/lib` and its
// own folder (relative `./`), never another feature or the app shell, so a feature can change or
// go without breaking another. Shared code (api, components, lib) imports no feature at all.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import reactHooks from "eslint-plugin-react-hooks";
import jsxA11y from "eslint-plugin-jsx-a11y";
import globals from "globals";

const otherFeature = {
  group: ["@/features/*", "@/app/*", "../*"],
  message:
    "A feature imports only @/api, @/components, @/lib and its own folder (./); move what two features share to components/ or lib/.",
};

const anyFeature = {
  group: ["@/features/*", "@/app/*", "../features/*", "../app/*"],
  message: "Shared code (api, components, lib) must not depend on a feature or the app shell.",
};

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "src/api/schema.ts", "e2e/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  jsxA11y.flatConfigs.recommended,
  {
    files: ["src/**/*.{ts,tsx}"],
    languageOptions: { globals: { ...globals.browser } },
    plugins: { "react-hooks": reactHooks },
    rules: {
      // The classic two rules as errors; the React Compiler's advisory rules are not adopted
      // (the app is not compiled by it).
      "react-hooks/rules-of-hooks": "error",
      "react-hooks/exhaustive-deps": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Query keys come from one factory (src/api/keys.ts), never an inline array.
      "no-restricted-syntax": [
        "error",
        {
          selector: "Property[key.name='queryKey'] > ArrayExpression",
          message: "Use the query-key factory in @/api/keys instead of an inline queryKey array.",
        },
      ],
    },
  },
  {
    files: ["src/features/**/*.{ts,tsx}"],
    rules: { "no-restricted-imports": ["error", { patterns: [otherFeature] }] },
  },
  {
    files: ["src/api/**/*.{ts,tsx}", "src/components/**/*.{ts,tsx}", "src/lib/**/*.{ts,tsx}"],
    rules: { "no-restricted-imports": ["error", { patterns: [anyFeature] }] },
  },
  {
    files: ["src/**/*.test.{ts,tsx}"],
    rules: { "no-restricted-syntax": "off" },
  },
  {
    files: ["*.config.{js,ts}"],
    languageOptions: { globals: { ...globals.node } },
  },
);
