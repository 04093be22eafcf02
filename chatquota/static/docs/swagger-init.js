// Starts Swagger UI on the document named by #swagger-ui's data-url. A file of
// its own (not an inline script) so the page's CSP can allow scripts from
// this host only.
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.url,
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  plugins: [SwaggerUIBundle.plugins.DownloadUrl],
  layout: "StandaloneLayout",
  deepLinking: true,
  validatorUrl: null  // no request to an online validator: this page works offline
});
