// Quick exit. The button leaves this site at once for a neutral page and
// replaces this page in the history, so that the Back button does not
// bring it back. Pressing Escape twice does the same. Without JavaScript
// the button is an ordinary link to the same neutral page.
(function () {
  'use strict';
  var link = document.getElementById('quick-exit');
  if (!link) { return; }
  var url = link.getAttribute('data-exit') || link.href;
  function leave(ev) {
    if (ev) { ev.preventDefault(); }
    document.documentElement.className += ' leaving';
    window.location.replace(url);
  }
  link.addEventListener('click', leave);
  var last = 0;
  document.addEventListener('keydown', function (ev) {
    if (ev.key !== 'Escape') { return; }
    var now = Date.now();
    if (now - last < 1000) { leave(ev); }
    last = now;
  });
}());
