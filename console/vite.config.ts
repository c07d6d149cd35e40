import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Served by the edge at /console; the dev server proxies the REST API to a local edge.
export default defineConfig({
  base: "/console/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
    // AudioWorklet modules load as files: the page's CSP (script-src 'self') refuses data: URLs.
    assetsInlineLimit: (file: string) => (file.endsWith("worklet.js") ? false : undefined),
  },
  server: { proxy: { "/api": "http://127.0.0.1:8086" } },
});
