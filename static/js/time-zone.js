/* Tells the server the browser's time zone in the backstop_tz cookie: pages show times
 * in it while the person has not chosen a zone on their profile (workflows/time_zones.py).
 * A file, not an inline script: the Content-Security-Policy forbids those. The cookie
 * counts from the next page on. IANA names (Europe/Berlin, Etc/GMT+5) are valid cookie
 * values as they are. */
(function () {
  "use strict";

  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (error) {
    return;  // no Intl: the office's zone it is
  }
  if (!zone) {
    return;
  }
  var cookie = "backstop_tz=" + zone;
  if (document.cookie.split("; ").indexOf(cookie) !== -1) {
    return;
  }
  document.cookie = cookie + "; path=/; max-age=31536000; SameSite=Lax" +
    (window.location.protocol === "https:" ? "; Secure" : "");
})();
