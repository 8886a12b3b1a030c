// Starts Swagger UI (served from this server by the swagger-ui-bundle package) on /openapi.json.
/* global SwaggerUIBundle */
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
});
