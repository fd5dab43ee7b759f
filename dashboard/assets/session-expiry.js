// A callback answered 401: the login session ended (expired, logged out elsewhere, account
// disabled). Go to the login page instead of leaving stale figures on screen.
(function () {
  var original = window.fetch;
  var leaving = false;
  if (!original) { return; }
  window.fetch = function () {
    return original.apply(this, arguments).then(function (response) {
      // Several callbacks meet the 401 at once: leave once (a second navigation would abort
      // the first).
      if (response.status === 401 && response.url.indexOf("/_dash-") !== -1 && !leaving) {
        leaving = true;
        var next = encodeURIComponent(window.location.pathname + window.location.search);
        window.location.assign("/login?expired=1&next=" + next);
      }
      return response;
    });
  };
})();
