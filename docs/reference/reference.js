/* Starts Swagger UI (docs/swagger-ui-bundle.js) on the openapi.yaml of the server that
 * serves this page. A file of its own because the page's Content-Security-Policy allows
 * no inline script. Paths are relative to /docs, so a proxy may mount segmentd under a
 * prefix. */
"use strict";
window.ui = SwaggerUIBundle({
  url: "openapi.yaml",
  dom_id: "#swagger-ui",
  deepLinking: true,
  /* operationIds are the names generated clients give the calls */
  displayOperationId: true,
  displayRequestDuration: true,
  /* the default posts the document to validator.swagger.io: no request leaves the server */
  validatorUrl: null,
  /* the token typed into "Authorize" is forgotten with the tab */
  persistAuthorization: false,
  defaultModelsExpandDepth: 0,
  /* try-it requests go to this server (servers[0] of the document is "/") */
  supportedSubmitMethods: ["get", "put", "post", "delete", "patch", "head"]
});
