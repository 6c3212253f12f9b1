/// <reference types="vitest" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import { fileURLToPath } from "node:url";

// The built UI is embedded in the Rust binary (admin/src/web.rs): hashed file names under
// assets/ get long cache headers there, index.html none. No inline scripts (the CSP forbids them).
export default defineConfig({
  plugins: [react()],
  resolve: { alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 800,
    // No manual chunks: the lazy routes already split LiveKit (voice) and Recharts (progress)
    // away from the first load, and manual chunks would drag shared React code into them.
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:3003" },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
