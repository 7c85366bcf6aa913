/* Starts Swagger UI on /docs/swagger (a file, not an inline script: the page's CSP allows
 * scripts of this origin only). The OpenAPI document's URL comes from the page. */
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    domNode: root,
    deepLinking: true
  });
})();
