// The API docs page (/api/docs/): Swagger UI on the site's OpenAPI schema. A static file rather than an
// inline <script>, so the page works under the site's Content-Security-Policy (script-src 'self').
// The schema's address comes from the container's data-schema-url attribute.
(function () {
  "use strict";

  function csrfToken() {
    var match = document.cookie.match(/(?:^|; )csrftoken=([^;]*)/);
    return match ? decodeURIComponent(match[1]) : null;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("swagger-ui");
    if (!container || typeof window.SwaggerUIBundle === "undefined") return;
    window.ui = window.SwaggerUIBundle({
      url: container.dataset.schemaUrl,
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      withCredentials: true,
      // "Try it out" with the session: state-changing calls need the CSRF token, as every form does.
      requestInterceptor: function (request) {
        var token = csrfToken();
        if (token) request.headers["X-CSRFToken"] = token;
        return request;
      }
    });
  });
})();
