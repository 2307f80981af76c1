// The language switch: the hg_lang cookie (zh-CN or en), then a reload so
// the server renders every label in the chosen language.
"use strict";

(function () {
  const button = document.getElementById("lang-switch");
  if (!button) return;
  button.addEventListener("click", function () {
    const lang = button.dataset.lang;
    document.cookie = "hg_lang=" + encodeURIComponent(lang) +
      "; path=/; max-age=31536000; SameSite=Lax";
    window.location.reload();
  });
})();
