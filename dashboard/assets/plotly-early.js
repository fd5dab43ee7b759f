// Start Plotly (4.8 MB of JavaScript, preloaded by the page's <link rel=preload>) while the
// page's own callbacks wait for the API, instead of before them: run earlier, its parsing (1 s
// and more on a busy machine) held up the renderer and so the callbacks themselves (seen with
// bench/dashboard --detail). It starts with the first callback request sent after Dash pages has
// drawn the page's layout, or a few seconds after the page loaded if none comes.
// While it loads, window.Plotly is a thenable: dcc.Graph waits on `window.Plotly || <its own
// script>` through Promise.resolve, so a graph drawn meanwhile waits for this script instead of
// loading Plotly a second time. Plotly's own script then replaces it with the real object.
(function () {
  var started = false;
  function load() {
    if (started || window.Plotly || document.querySelector('script[src*="plotly.min.js"]')) { return; }
    started = true;
    var script = document.createElement("script");
    script.id = "plotly-early";
    script.async = true;
    script.src = window._dashPlotlyJSURL || "/_dash-component-suites/plotly/package_data/plotly.min.js";
    var placeholder;
    var loaded = new Promise(function (resolve, reject) {
      script.onload = function () { resolve(); };
      script.onerror = function (error) {
        if (window.Plotly === placeholder) { window.Plotly = undefined; }
        reject(error);
      };
    });
    placeholder = { then: function (onDone, onFailed) { return loaded.then(onDone, onFailed); } };
    window.Plotly = placeholder;
    document.head.appendChild(script);
  }
  var original = window.fetch;
  var pageDrawn = false;
  if (original) {
    window.fetch = function (resource, init) {
      var url = typeof resource === "string" ? resource : (resource && resource.url) || "";
      var response = original.apply(this, arguments);
      if (url.indexOf("/_dash-update-component") === -1) { return response; }
      var body = init && typeof init.body === "string" ? init.body : "";
      if (body.indexOf("_pages_content") !== -1) {
        // Dash pages' own callback: the page's layout comes with its answer.
        response.then(function () { pageDrawn = true; }, function () {});
      } else if (pageDrawn) {
        window.setTimeout(load, 0);
      }
      return response;
    };
  }
  window.addEventListener("load", function () { window.setTimeout(load, 3000); });
})();
