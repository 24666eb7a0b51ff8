// Starts Swagger UI on /docs from a file of our own, so the page runs under a CSP without inline scripts.
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, tryItOutEnabled: false, validatorUrl: null });
});
