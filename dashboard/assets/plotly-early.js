// Start Plotly (the script named by <meta name="pisman-plotly">, preloaded by the page's
// <link rel=preload>: the 1.2 MB basic bundle, dashboard/plotly_bundle.py) while the page's own
// callbacks wait for the API, instead of before them: run earlier, its parsing held up the
// renderer and so the callbacks themselves (seen with bench/dashboard --detail). It starts with
// the first callback request sent after Dash pages has drawn the page's layout, when a graph asks
// for it, or a few seconds after the page loaded if neither comes.
// Until it has run, window.Plotly is a thenable: dcc.Graph waits on `window.Plotly || <its own
// script>` through Promise.resolve, so a graph waits for this script (and starts it) instead of
// loading the full bundle from Dash's own address. Plotly's script then replaces it.
(function () {
  if (window.Plotly) { return; }
  var meta = document.querySelector('meta[name="pisman-plotly"]');
  var url = (meta && meta.content) || "/_dash-component-suites/plotly/package_data/plotly.min.js";
  var started = false;
  var done, failed;
  var loaded = new Promise(function (resolve, reject) { done = resolve; failed = reject; });
  var placeholder = {
    then: function (onDone, onFailed) { load(); return loaded.then(onDone, onFailed); }
  };
  window.Plotly = placeholder;
  function load() {
    if (started) { return; }
    started = true;
    var script = document.createElement("script");
    script.id = "plotly-early";
    script.async = true;
    script.src = url;
    script.onload = function () {
      // Dates in the page's language (dashboard/date_locales.py registered the locales).
      if (window.Plotly && window.Plotly.setPlotConfig) {
        window.Plotly.setPlotConfig({locale: document.documentElement.lang || "id"});
      }
      done();
    };
    script.onerror = function (error) {
      if (window.Plotly === placeholder) { window.Plotly = undefined; }
      failed(error);
    };
    document.head.appendChild(script);
  }
  var original = window.fetch;
  var pageDrawn = false;
  if (original) {
    window.fetch = function (resource, init) {
      var address = typeof resource === "string" ? resource : (resource && resource.url) || "";
      var response = original.apply(this, arguments);
      if (address.indexOf("/_dash-update-component") === -1) { return response; }
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
