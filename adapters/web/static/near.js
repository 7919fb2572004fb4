// "Near me": asks the browser for its position, rounds it to 0.01 degree
// (about 1 km) and sends it with the search form to this site only. The
// button appears only when the browser can do it; the form works without.
(function () {
  'use strict';
  var box = document.getElementById('near');
  if (!box || !('geolocation' in navigator)) { return; }
  var button = document.getElementById('near-button');
  var status = document.getElementById('near-status');
  var lat = document.getElementById('f-lat');
  var lon = document.getElementById('f-lon');
  box.hidden = false;
  button.addEventListener('click', function () {
    status.textContent = box.getAttribute('data-wait');
    navigator.geolocation.getCurrentPosition(function (pos) {
      lat.value = (Math.round(pos.coords.latitude * 100) / 100).toFixed(2);
      lon.value = (Math.round(pos.coords.longitude * 100) / 100).toFixed(2);
      var form = box.closest('form');
      // The place is now the point: a country, region or city chosen
      // before would narrow it to somewhere else.
      ['f-region', 'f-city'].forEach(function (id) {
        var el = document.getElementById(id);
        if (el) { el.value = ''; }
      });
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    }, function () {
      status.textContent = box.getAttribute('data-fail');
    }, { enableHighAccuracy: false, maximumAge: 600000, timeout: 20000 });
  });
}());
