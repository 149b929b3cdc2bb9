import { defineConfig } from "vitest/config";

// The window loads only what this build emits (tauri.conf.json's strict CSP):
// no inline scripts or styles, no remote content.
export default defineConfig({
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  build: {
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
  },
  test: {
    environment: "jsdom",
  },
});
