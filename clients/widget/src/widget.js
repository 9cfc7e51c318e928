// widget.js: the kf chat widget's loader. A classic script, embedded with one tag:
//
//   <script src="https://kf.example/widget/widget.js" data-tenant="demo" data-entry="web" async></script>
//
// It reads its settings from its own tag, finds its server from its own URL (origin + base path), puts the JS API
// on `window.kf` (calls made before the widget has loaded are queued and replayed) and imports the widget module
// (`app.js`) from the same base. It defines no other global and touches nothing on the page but the one element the
// widget adds at the end of <body>. See clients/widget/README.md.
(function () {
  "use strict";
  var script = /** @type {HTMLScriptElement | null} */ (document.currentScript);
  if (!script || !script.src) {
    // Loaded in a way that hides the tag (e.g. injected as a module): look for it.
    var candidates = /** @type {NodeListOf<HTMLScriptElement>} */ (document.querySelectorAll("script[src][data-tenant]"));
    for (var i = 0; i < candidates.length; i++) {
      if (/\/widget\.js(?:[?#]|$)/.test(candidates[i].src)) script = candidates[i];
    }
  }
  if (!script) {
    console.error("kf widget: cannot find its own <script> tag");
    return;
  }
  var src = new URL(script.src, location.href);
  var base = src.origin + src.pathname.replace(/[^/]*$/, ""); // e.g. https://kf.example/widget/
  var data = script.dataset;

  // The pre-load API: `kf(...)`, `kf.open()` etc. queue their calls until the widget has loaded. A host may also
  // define `window.kf = window.kf || function () { (kf.q = kf.q || []).push(arguments) }` before this script.
  var win = /** @type {any} */ (window);
  var earlier = win.kf;
  if (earlier && earlier.__kfWidget) return; // loaded twice: the first one stays
  var queue = [];
  if (typeof earlier === "function" && earlier.q) queue = Array.prototype.slice.call(earlier.q);
  else if (earlier && Array.isArray(earlier.q)) queue = earlier.q.slice();
  var methods = ["open", "close", "toggle", "identify", "logout", "on", "off", "debug"];
  /** @type {any} */
  // `kf("open")` is `kf.open()`. Until the widget has loaded, both queue; then app.js sets `kf.__call`.
  var kf = function () {
    if (kf.__call) return kf.__call.apply(null, arguments);
    queue.push(arguments);
  };
  methods.forEach(function (name) {
    kf[name] = function () {
      var args = Array.prototype.slice.call(arguments);
      args.unshift(name);
      queue.push(args);
    };
  });
  kf.q = queue;
  kf.__kfWidget = true;
  kf.version = "1";
  win.kf = kf;

  var options = {
    base: base,
    tenant: data.tenant || "",
    entry: data.entry || null,
    lang: data.lang || null,
    position: data.position || "right",
    color: data.color || null,
    userId: data.userId || null,
    userHash: data.userHash || null,
    userName: data.userName || null,
    userEmail: data.userEmail || null,
    open: data.open === "true",
  };
  import(base + "app.js")
    .then(function (module) {
      module.boot(options, kf);
    })
    .catch(function (error) {
      console.error("kf widget: cannot load " + base + "app.js", error);
    });
})();
