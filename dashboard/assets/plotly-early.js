// Start Plotly (4.8 MB of JavaScript) while the first callbacks wait for the API, instead of
// after they answer: dcc.Graph uses window.Plotly when it is already there.
(function () {
  function load() {
    if (window.Plotly || document.getElementById("plotly-early")) { return; }
    var script = document.createElement("script");
    script.id = "plotly-early";
    script.async = true;
    script.src = window._dashPlotlyJSURL || "/_dash-component-suites/plotly/package_data/plotly.min.js";
    document.head.appendChild(script);
  }
  window.addEventListener("load", function () {
    if (window.requestIdleCallback) { window.requestIdleCallback(load, { timeout: 1500 }); }
    else { window.setTimeout(load, 200); }
  });
})();
