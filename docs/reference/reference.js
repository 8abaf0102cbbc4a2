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
  /* the default badge asks validator.swagger.io about the document: nothing leaves this server */
  validatorUrl: null,
  /* the token typed into "Authorize" is forgotten with the tab */
  persistAuthorization: false,
  /* the schemas stay folded at the end: each operation shows its own */
  defaultModelsExpandDepth: 0
  /* "Try it out" sends to servers[0] of the document, "/": this server */
});
