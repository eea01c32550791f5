// Appease feedback widget: a "Feedback" button at the bottom right of a shop's page that
// opens a small form (rating, what went wrong, a message, how to reach the customer) and
// posts it to Appease. Self-contained: no framework, no build step, no requests but the
// POST. Embedding, the data- attributes and the API contract: docs/feedback-widget.md.
//
//   <script src="https://appease.example.com/static/feedback-widget.js"
//           data-site-key="pk_..." data-language="es" defer></script>
(function () {
  "use strict";

  if (window.AppeaseFeedback) return; // the tag is on the page twice: one widget is enough

  var PREFIX = "appease-fb-";
  var MAX_TEXT = 4000;
  var MAX_PAGE_URL = 500; // Feedback.page_url's length in the database
  var TIMEOUT_MS = 15000;
  var INCIDENT_TYPES = [
    "late_delivery", "damaged_item", "wrong_item", "overcharge", "staff_attitude",
    "product_defect", "billing", "service_outage", "other",
  ];
  // Server field name -> the element that shows its error. Anything else (site_key,
  // page_url, non_field_errors, a field the shop filled in through data- attributes)
  // goes to the status line.
  var FIELD_IDS = {
    rating: "rating",
    incident_type: "incident",
    text: "text",
    email: "email",
    order_reference: "order",
  };

  var STRINGS = {
    en: {
      button: "Feedback",
      title: "Send us your feedback",
      close: "Close",
      rating: "How was your experience?",
      stars: ["1 star: very bad", "2 stars: bad", "3 stars: okay", "4 stars: good", "5 stars: excellent"],
      incident: "What went wrong?",
      notSure: "Not sure",
      incidents: {
        late_delivery: "Late delivery",
        damaged_item: "Damaged item",
        wrong_item: "Wrong item",
        overcharge: "Overcharge",
        staff_attitude: "Staff attitude",
        product_defect: "Product defect",
        billing: "Billing",
        service_outage: "Service outage",
        other: "Other",
      },
      optional: "(optional)",
      text: "Tell us more",
      textHint: "Up to 4000 characters.",
      email: "Email",
      emailHint: "So we can get back to you.",
      order: "Order number",
      honeypot: "Leave this field empty",
      send: "Send",
      sending: "Sending…",
      thanksQueued: "Thank you — we're on it.",
      thanksAcknowledged: "Thank you for your feedback.",
      done: "Close",
      ratingRequired: "Choose a rating.",
      emailRequired: "Enter your email address.",
      emailInvalid: "Enter a valid email address.",
      invalid: "Please check the marked fields.",
      tooMany: "Too many messages, try again in a minute.",
      network: "We could not reach our server. Check your connection and try again.",
      failed: "Sorry, your message could not be sent. Please try again later.",
    },
    es: {
      button: "Opinión",
      title: "Envíanos tu opinión",
      close: "Cerrar",
      rating: "¿Qué tal fue tu experiencia?",
      stars: ["1 estrella: muy mala", "2 estrellas: mala", "3 estrellas: normal", "4 estrellas: buena", "5 estrellas: excelente"],
      incident: "¿Qué salió mal?",
      notSure: "No lo sé",
      incidents: {
        late_delivery: "Entrega con retraso",
        damaged_item: "Artículo dañado",
        wrong_item: "Artículo equivocado",
        overcharge: "Cobro de más",
        staff_attitude: "Trato del personal",
        product_defect: "Producto defectuoso",
        billing: "Facturación",
        service_outage: "Servicio caído",
        other: "Otro",
      },
      optional: "(opcional)",
      text: "Cuéntanos más",
      textHint: "Hasta 4000 caracteres.",
      email: "Correo electrónico",
      emailHint: "Para poder responderte.",
      order: "Número de pedido",
      honeypot: "Deja este campo vacío",
      send: "Enviar",
      sending: "Enviando…",
      thanksQueued: "Gracias, ya nos estamos ocupando.",
      thanksAcknowledged: "Gracias por tu opinión.",
      done: "Cerrar",
      ratingRequired: "Elige una puntuación.",
      emailRequired: "Escribe tu correo electrónico.",
      emailInvalid: "Escribe un correo electrónico válido.",
      invalid: "Revisa los campos marcados.",
      tooMany: "Demasiados mensajes, inténtalo de nuevo en un minuto.",
      network: "No pudimos conectar con el servidor. Comprueba tu conexión e inténtalo de nuevo.",
      failed: "Lo sentimos, no pudimos enviar tu mensaje. Inténtalo de nuevo más tarde.",
    },
    pt_BR: {
      button: "Opinião",
      title: "Envie sua opinião",
      close: "Fechar",
      rating: "Como foi sua experiência?",
      stars: ["1 estrela: muito ruim", "2 estrelas: ruim", "3 estrelas: razoável", "4 estrelas: boa", "5 estrelas: excelente"],
      incident: "O que deu errado?",
      notSure: "Não sei",
      incidents: {
        late_delivery: "Entrega atrasada",
        damaged_item: "Item danificado",
        wrong_item: "Item errado",
        overcharge: "Cobrança a mais",
        staff_attitude: "Atendimento da equipe",
        product_defect: "Defeito no produto",
        billing: "Faturamento",
        service_outage: "Serviço fora do ar",
        other: "Outro",
      },
      optional: "(opcional)",
      text: "Conte mais",
      textHint: "Até 4000 caracteres.",
      email: "E-mail",
      emailHint: "Para podermos responder.",
      order: "Número do pedido",
      honeypot: "Deixe este campo vazio",
      send: "Enviar",
      sending: "Enviando…",
      thanksQueued: "Obrigado — já estamos cuidando disso.",
      thanksAcknowledged: "Obrigado pela sua opinião.",
      done: "Fechar",
      ratingRequired: "Escolha uma nota.",
      emailRequired: "Informe seu e-mail.",
      emailInvalid: "Informe um e-mail válido.",
      invalid: "Confira os campos marcados.",
      tooMany: "Muitas mensagens, tente de novo em um minuto.",
      network: "Não conseguimos falar com o servidor. Verifique sua conexão e tente de novo.",
      failed: "Desculpe, não conseguimos enviar sua mensagem. Tente de novo mais tarde.",
    },
  };

  // Scoped by the prefix and mostly by id, so the shop's own rules for `button` or
  // `input` lose on specificity; the shop's page is not restyled.
  var CSS = [
    ".appease-fb-root, .appease-fb-root * { box-sizing: border-box; }",
    ".appease-fb-root { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1d2330; letter-spacing: normal; text-transform: none; text-align: left; }",
    ".appease-fb-root [hidden] { display: none !important; }",
    ".appease-fb-root :focus-visible { outline: 3px solid #ffbf47; outline-offset: 1px; box-shadow: 0 0 0 1px #1d2330; }",
    "#appease-fb-button { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; margin: 0; padding: 10px 18px; border: 0; border-radius: 22px; background: #0b63c5; color: #fff; font: 600 15px/1.2 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; box-shadow: 0 2px 8px rgba(0,0,0,.25); cursor: pointer; }",
    "#appease-fb-button:hover { background: #094f9e; }",
    ".appease-fb-backdrop { position: fixed; inset: 0; top: 0; left: 0; right: 0; bottom: 0; z-index: 2147483001; background: rgba(29,35,48,.35); }",
    "#appease-fb-dialog { position: fixed; right: 20px; bottom: 20px; z-index: 2147483002; width: 360px; max-width: calc(100vw - 16px); max-height: calc(100vh - 40px); overflow: auto; margin: 0; padding: 16px 18px; background: #fff; border: 1px solid #d8dde6; border-radius: 10px; box-shadow: 0 8px 28px rgba(0,0,0,.3); }",
    "@media (max-width: 420px) { #appease-fb-dialog { right: 8px; bottom: 8px; max-height: calc(100vh - 16px); } }",
    ".appease-fb-head { display: flex; align-items: flex-start; gap: 8px; margin: 0 0 8px; }",
    "#appease-fb-title { flex: 1; margin: 0; padding: 0; font-size: 17px; font-weight: 700; line-height: 1.3; color: #1d2330; }",
    "#appease-fb-close { margin: -4px -6px 0 0; padding: 2px 8px; border: 0; background: none; color: #5b6475; font-size: 22px; line-height: 1; cursor: pointer; }",
    ".appease-fb-field { margin: 0 0 12px; padding: 0; border: 0; min-width: 0; }",
    ".appease-fb-label, .appease-fb-field legend { display: block; margin: 0 0 3px; padding: 0; font-weight: 600; font-size: 15px; color: #1d2330; }",
    ".appease-fb-opt { font-weight: 400; color: #5b6475; }",
    ".appease-fb-hint { display: block; margin: 2px 0 0; font-size: 13px; color: #5b6475; }",
    ".appease-fb-error { display: block; margin: 3px 0 0; font-size: 14px; color: #b42318; }",
    ".appease-fb-error:empty { display: none; }",
    ".appease-fb-input { display: block; width: 100%; margin: 0; padding: 6px 8px; border: 1px solid #6b7280; border-radius: 4px; background: #fff; color: #1d2330; font: inherit; }",
    "textarea.appease-fb-input { min-height: 84px; resize: vertical; }",
    ".appease-fb-input[aria-invalid=true] { border-color: #b42318; border-width: 2px; }",
    ".appease-fb-stars { display: flex; gap: 2px; }",
    ".appease-fb-star { position: relative; }",
    ".appease-fb-star input { position: absolute; top: 0; left: 0; width: 100%; height: 100%; margin: 0; opacity: 0; cursor: pointer; }",
    ".appease-fb-star label { display: block; padding: 0 3px; font-size: 30px; line-height: 1.1; color: #6b7280; cursor: pointer; }",
    ".appease-fb-star.appease-fb-on label { color: #b45309; }",
    ".appease-fb-star input:focus-visible + label { outline: 3px solid #ffbf47; outline-offset: 0; box-shadow: 0 0 0 1px #1d2330; border-radius: 4px; }",
    ".appease-fb-stars-invalid .appease-fb-star label { text-decoration: underline wavy #b42318; }",
    ".appease-fb-sr { position: absolute !important; width: 1px !important; height: 1px !important; margin: -1px !important; padding: 0 !important; overflow: hidden !important; clip: rect(0 0 0 0) !important; white-space: nowrap !important; border: 0 !important; }",
    // The honeypot: off-screen, not display:none (some bots skip hidden fields).
    ".appease-fb-hp { position: absolute !important; left: -10000px !important; top: auto !important; width: 1px !important; height: 1px !important; overflow: hidden !important; }",
    ".appease-fb-actions { display: flex; justify-content: flex-end; gap: 8px; margin: 4px 0 0; }",
    "#appease-fb-send, #appease-fb-done { margin: 0; padding: 7px 18px; border: 1px solid #0b63c5; border-radius: 4px; background: #0b63c5; color: #fff; font: 600 15px/1.3 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; cursor: pointer; }",
    "#appease-fb-send[disabled] { opacity: .6; cursor: progress; }",
    "#appease-fb-status { margin: 8px 0 0; font-size: 14px; }",
    "#appease-fb-status:empty { display: none; }",
    "#appease-fb-status.appease-fb-bad { padding: 6px 10px; border-left: 4px solid #b42318; background: #fdeeee; color: #8a1a12; }",
    "#appease-fb-status.appease-fb-ok { padding: 10px 12px; border-left: 4px solid #13795b; background: #e9f7f1; color: #0d5a43; font-size: 16px; }",
  ].join("\n");

  var script = document.currentScript ||
    document.querySelector("script[data-site-key][src*='feedback-widget']") ||
    document.querySelector("script[src*='feedback-widget']");
  var data = (script && script.dataset) || {};

  function supported(tag) {
    var lower = String(tag || "").trim().toLowerCase();
    if (lower === "es" || lower.indexOf("es-") === 0 || lower.indexOf("es_") === 0) return "es";
    if (lower === "pt" || lower.indexOf("pt-") === 0 || lower.indexOf("pt_") === 0) return "pt_BR";
    if (lower === "en" || lower.indexOf("en-") === 0 || lower.indexOf("en_") === 0) return "en";
    return null;
  }

  // The first language we speak of: the snippet's data-language, the page's <html lang>,
  // then the browser's preferences in order (what it sends as Accept-Language).
  function pickLanguage(candidates) {
    for (var i = 0; i < candidates.length; i++) {
      var language = supported(candidates[i]);
      if (language) return language;
    }
    return "en";
  }

  function resolveEndpoint() {
    try {
      if (data.endpoint) return new URL(data.endpoint, document.baseURI).href;
      return new URL("/api/v1/feedback", script.src).href;
    } catch (error) {
      return "";
    }
  }

  var config = {
    siteKey: (data.siteKey || "").trim(),
    endpoint: resolveEndpoint(),
    language: pickLanguage(
      [data.language, document.documentElement.lang].concat(navigator.languages || [], [navigator.language])
    ),
    email: (data.email || "").trim(),
    externalId: (data.externalId || "").trim(),
    orderReference: (data.orderReference || "").trim(),
  };
  var t = STRINGS[config.language];
  // The shop knows who is writing: do not ask for an email.
  var askEmail = !config.email && !config.externalId;

  var els = {};
  var state = { built: false, openWhenBuilt: false, isOpen: false, posting: false, sent: false, thanksSeen: false, returnFocus: null };

  // --- DOM helpers ---------------------------------------------------------------

  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function id(name) {
    return PREFIX + name;
  }

  function label(forId, text, optional) {
    return h("label", { for: forId, class: PREFIX + "label" }, [
      text,
      optional ? " " : null,
      optional ? h("span", { class: PREFIX + "opt", text: t.optional }) : null,
    ]);
  }

  function errorSlot(name) {
    return h("span", { id: id(name + "-error"), class: PREFIX + "error" });
  }

  // --- Building ------------------------------------------------------------------

  function build() {
    var style = h("style", { id: id("style") });
    style.textContent = CSS;
    document.head.appendChild(style);

    var root = h("div", { class: PREFIX + "root", lang: config.language.replace("_", "-") });

    els.button = h("button", {
      type: "button",
      id: id("button"),
      "aria-haspopup": "dialog",
      "aria-expanded": "false",
      "aria-controls": id("dialog"),
      text: t.button,
    });
    els.button.addEventListener("click", function () {
      open();
    });

    els.backdrop = h("div", { class: PREFIX + "backdrop", hidden: true });
    els.backdrop.addEventListener("click", function () {
      close();
    });

    els.close = h("button", { type: "button", id: id("close"), "aria-label": t.close }, [
      h("span", { "aria-hidden": "true", text: "×" }),
    ]);
    els.close.addEventListener("click", function () {
      close();
    });

    // Rating: five native radios, so arrow keys and screen readers work as usual;
    // each label is a star, with its words for screen readers.
    els.stars = [];
    var starRow = h("div", { class: PREFIX + "stars" });
    els.ratingInputs = [];
    for (var n = 1; n <= 5; n++) {
      var input = h("input", {
        type: "radio",
        id: id("rating-" + n),
        name: id("rating"),
        value: n,
        required: true,
      });
      var star = h("span", { class: PREFIX + "star", "data-value": n }, [
        input,
        h("label", { for: id("rating-" + n) }, [
          h("span", { "aria-hidden": "true", text: "★" }),
          h("span", { class: PREFIX + "sr", text: t.stars[n - 1] }),
        ]),
      ]);
      input.addEventListener("change", function () {
        paintStars(0);
        clearError("rating");
      });
      star.addEventListener("mouseenter", paintStars.bind(null, n));
      star.addEventListener("mouseleave", paintStars.bind(null, 0));
      els.ratingInputs.push(input);
      els.stars.push(star);
      starRow.appendChild(star);
    }
    els.ratingGroup = h("fieldset", { class: PREFIX + "field", id: id("rating-group") }, [
      h("legend", { text: t.rating }),
      starRow,
      errorSlot("rating"),
    ]);

    els.incident = h("select", { id: id("incident"), name: "incident_type", class: PREFIX + "input" }, [
      h("option", { value: "", text: t.notSure }),
    ].concat(INCIDENT_TYPES.map(function (value) {
      return h("option", { value: value, text: t.incidents[value] });
    })));

    els.text = h("textarea", {
      id: id("text"),
      name: "text",
      class: PREFIX + "input",
      rows: 4,
      maxlength: MAX_TEXT,
      "aria-describedby": id("text-hint"),
    });

    els.email = h("input", {
      type: "email",
      id: id("email"),
      name: "email",
      class: PREFIX + "input",
      autocomplete: "email",
      inputmode: "email",
      maxlength: 254,
      required: askEmail,
      "aria-describedby": id("email-hint"),
    });

    els.order = h("input", {
      type: "text",
      id: id("order"),
      name: "order_reference",
      class: PREFIX + "input",
      maxlength: 100,
      autocomplete: "off",
      value: config.orderReference || null,
    });

    els.website = h("input", {
      type: "text",
      id: id("website"),
      name: "website",
      tabindex: "-1",
      autocomplete: "off",
      "aria-hidden": "true",
    });

    els.send = h("button", { type: "submit", id: id("send"), text: t.send });
    els.status = h("div", { id: id("status"), role: "status", "aria-live": "polite" });
    els.done = h("button", { type: "button", id: id("done"), text: t.done, "aria-describedby": id("status"), hidden: true });
    els.done.addEventListener("click", function () {
      close();
    });

    els.form = h("form", { id: id("form"), novalidate: true }, [
      els.ratingGroup,
      h("div", { class: PREFIX + "field" }, [label(id("incident"), t.incident, true), els.incident, errorSlot("incident")]),
      h("div", { class: PREFIX + "field" }, [
        label(id("text"), t.text, true),
        els.text,
        h("span", { id: id("text-hint"), class: PREFIX + "hint", text: t.textHint }),
        errorSlot("text"),
      ]),
      askEmail
        ? h("div", { class: PREFIX + "field" }, [
          label(id("email"), t.email),
          els.email,
          h("span", { id: id("email-hint"), class: PREFIX + "hint", text: t.emailHint }),
          errorSlot("email"),
        ])
        : null,
      h("div", { class: PREFIX + "field" }, [label(id("order"), t.order, true), els.order, errorSlot("order")]),
      h("div", { class: PREFIX + "hp", "aria-hidden": "true" }, [
        h("label", { for: id("website"), text: t.honeypot }),
        els.website,
      ]),
      h("div", { class: PREFIX + "actions" }, [els.send]),
    ]);
    els.form.addEventListener("submit", function (event) {
      event.preventDefault();
      submit();
    });
    [els.incident, els.text, els.email, els.order].forEach(function (field) {
      field.addEventListener("input", function () {
        clearError(fieldName(field));
      });
    });

    els.dialog = h("div", {
      id: id("dialog"),
      role: "dialog",
      "aria-modal": "true",
      "aria-labelledby": id("title"),
      tabindex: "-1",
      hidden: true,
    }, [
      h("div", { class: PREFIX + "head" }, [h("h2", { id: id("title"), text: t.title }), els.close]),
      els.form,
      els.status,
      h("div", { class: PREFIX + "actions" }, [els.done]),
    ]);
    els.dialog.addEventListener("keydown", trapTab);

    root.appendChild(els.button);
    root.appendChild(els.backdrop);
    root.appendChild(els.dialog);
    document.body.appendChild(root);
    els.root = root;
    state.built = true;
    if (state.openWhenBuilt) open();
  }

  function fieldName(element) {
    var names = Object.keys(FIELD_IDS);
    for (var i = 0; i < names.length; i++) {
      if (id(FIELD_IDS[names[i]]) === element.id) return names[i];
    }
    return "";
  }

  function checkedRating() {
    return els.ratingInputs.filter(function (input) {
      return input.checked;
    })[0];
  }

  function ratingTabStop() {
    return checkedRating() || els.ratingInputs[0];
  }

  function paintStars(preview) {
    var checked = checkedRating();
    var value = preview || (checked ? Number(checked.value) : 0);
    els.stars.forEach(function (star, index) {
      star.classList.toggle(PREFIX + "on", index < value);
    });
  }

  // --- Open, close, focus ----------------------------------------------------------

  function focusable() {
    var nodes = els.dialog.querySelectorAll("button, input, select, textarea, a[href], [tabindex]");
    return Array.prototype.filter.call(nodes, function (node) {
      if (node.disabled || node.getAttribute("tabindex") === "-1") return false;
      if (node.type === "radio" && node !== ratingTabStop()) return false;
      return node.getClientRects().length > 0;
    });
  }

  function trapTab(event) {
    if (event.key !== "Tab") return;
    var nodes = focusable();
    if (!nodes.length) return;
    var first = nodes[0];
    var last = nodes[nodes.length - 1];
    var active = document.activeElement;
    var inside = els.dialog.contains(active);
    if (event.shiftKey && (active === first || !inside || active === els.dialog)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (active === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  }

  function onDocumentKeydown(event) {
    if (!state.isOpen) return;
    if (event.key === "Escape" || event.key === "Esc") {
      event.preventDefault();
      close();
    } else if (event.key === "Tab" && !els.dialog.contains(document.activeElement)) {
      // Focus fell out (a disabled button loses it): bring it back in.
      trapTab(event);
    }
  }

  function onDocumentFocusin(event) {
    if (state.isOpen && !els.dialog.contains(event.target)) focusFirst();
  }

  // Into the dialog: the rating (the checked star, as the radio group's tab stop),
  // or the Close button under a thank-you.
  function focusFirst() {
    (state.sent ? els.done : ratingTabStop()).focus();
  }

  function open() {
    if (!state.built) {
      state.openWhenBuilt = true;
      return;
    }
    if (state.isOpen) return;
    // After a thank-you the customer has seen, start again from an empty form.
    if (state.sent && state.thanksSeen) reset();
    var active = document.activeElement;
    state.returnFocus = active && active !== document.body && !els.root.contains(active) ? active : null;
    state.isOpen = true;
    els.backdrop.hidden = false;
    els.dialog.hidden = false;
    els.button.setAttribute("aria-expanded", "true");
    document.addEventListener("keydown", onDocumentKeydown, true);
    document.addEventListener("focusin", onDocumentFocusin, true);
    focusFirst();
  }

  function close() {
    state.openWhenBuilt = false;
    if (!state.built || !state.isOpen) return;
    state.isOpen = false;
    if (state.sent) state.thanksSeen = true;
    els.dialog.hidden = true;
    els.backdrop.hidden = true;
    els.button.setAttribute("aria-expanded", "false");
    document.removeEventListener("keydown", onDocumentKeydown, true);
    document.removeEventListener("focusin", onDocumentFocusin, true);
    var target = state.returnFocus && state.returnFocus.isConnected ? state.returnFocus : els.button;
    state.returnFocus = null;
    target.focus();
  }

  // A closed dialog keeps what was typed (closing by mistake loses nothing).
  function reset() {
    els.form.reset();
    if (config.orderReference) els.order.value = config.orderReference;
    clearErrors();
    setStatus("", "");
    paintStars(0);
    els.form.hidden = false;
    els.done.hidden = true;
    state.sent = false;
    state.thanksSeen = false;
  }

  // --- Errors and status -------------------------------------------------------------

  function fieldElements(name) {
    if (name === "rating") return els.ratingInputs;
    if (name === "email" && !askEmail) return [];
    var element = document.getElementById(id(FIELD_IDS[name]));
    return element ? [element] : [];
  }

  function showError(name, messages) {
    var slot = document.getElementById(id(FIELD_IDS[name] + "-error"));
    var targets = fieldElements(name);
    if (!slot || !targets.length) return false;
    slot.textContent = messages.join(" ");
    targets.forEach(function (element) {
      element.setAttribute("aria-invalid", "true");
      var described = (element.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (described.indexOf(slot.id) === -1) described.push(slot.id);
      element.setAttribute("aria-describedby", described.join(" "));
    });
    if (name === "rating") els.ratingGroup.classList.add(PREFIX + "stars-invalid");
    return true;
  }

  function clearError(name) {
    if (!name || !FIELD_IDS[name]) return;
    var slot = document.getElementById(id(FIELD_IDS[name] + "-error"));
    if (slot) slot.textContent = "";
    fieldElements(name).forEach(function (element) {
      element.removeAttribute("aria-invalid");
      var described = (element.getAttribute("aria-describedby") || "").split(" ").filter(function (token) {
        return token && token !== id(FIELD_IDS[name] + "-error");
      });
      if (described.length) element.setAttribute("aria-describedby", described.join(" "));
      else element.removeAttribute("aria-describedby");
    });
    if (name === "rating") els.ratingGroup.classList.remove(PREFIX + "stars-invalid");
  }

  function clearErrors() {
    Object.keys(FIELD_IDS).forEach(clearError);
  }

  function setStatus(text, kind) {
    els.status.textContent = text;
    els.status.className = kind ? PREFIX + kind : "";
  }

  function focusFirstInvalid() {
    var invalid = els.form.querySelector("[aria-invalid=true]");
    if (invalid && invalid.type === "radio") invalid = ratingTabStop();
    if (invalid) invalid.focus();
  }

  // A DRF error list is usually ["message", ...]; be lenient with a string or a
  // nested object.
  function messagesOf(value) {
    if (value === null || value === undefined) return [];
    if (typeof value === "string") return [value];
    if (Array.isArray(value)) return value.reduce(function (all, item) {
      return all.concat(messagesOf(item));
    }, []);
    if (typeof value === "object") return Object.keys(value).reduce(function (all, key) {
      return all.concat(messagesOf(value[key]));
    }, []);
    return [String(value)];
  }

  // --- Sending -------------------------------------------------------------------------

  function selectedRating() {
    var checked = checkedRating();
    return checked ? Number(checked.value) : null;
  }

  // The server checks everything again; this only spares a round trip for the
  // obvious (and gives the messages in the customer's language).
  function validate(values) {
    var valid = true;
    if (!values.rating) {
      showError("rating", [t.ratingRequired]);
      valid = false;
    }
    if (askEmail && !values.email) {
      showError("email", [t.emailRequired]);
      valid = false;
    } else if (askEmail && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(values.email)) {
      showError("email", [t.emailInvalid]);
      valid = false;
    }
    return valid;
  }

  function pageUrl() {
    var href = location.href;
    if (href.length <= MAX_PAGE_URL) return href;
    var bare = location.origin + location.pathname;
    return bare.length <= MAX_PAGE_URL ? bare : bare.slice(0, MAX_PAGE_URL);
  }

  function payload(values) {
    var body = {
      site_key: config.siteKey,
      rating: values.rating,
      text: values.text,
      incident_type: values.incidentType,
      email: askEmail ? values.email : config.email,
      external_id: config.externalId,
      order_reference: values.orderReference,
      page_url: pageUrl(),
      language: config.language,
      channel: "email",
      source: "widget",
      website: values.website,
    };
    // Empty optional fields are left out; the honeypot is always sent.
    ["rating", "text", "incident_type", "email", "external_id", "order_reference"].forEach(function (key) {
      if (body[key] === null || body[key] === "") delete body[key];
    });
    return body;
  }

  async function submit() {
    if (state.posting || state.sent) return;
    clearErrors();
    setStatus("", "");
    var values = {
      rating: selectedRating(),
      text: els.text.value.trim().slice(0, MAX_TEXT),
      incidentType: els.incident.value,
      email: els.email.value.trim(),
      orderReference: els.order.value.trim(),
      website: els.website.value,
    };
    if (!validate(values)) {
      setStatus(t.invalid, "bad");
      focusFirstInvalid();
      return;
    }

    state.posting = true;
    els.send.disabled = true;
    els.send.textContent = t.sending;
    els.form.setAttribute("aria-busy", "true");
    setStatus(t.sending, "");

    var response;
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : null;
    try {
      response = await fetch(config.endpoint, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        // The API's field errors in the widget's language, not whatever the browser asks.
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "Accept-Language": config.language.replace("_", "-").toLowerCase(),
        },
        body: JSON.stringify(payload(values)),
        signal: controller ? controller.signal : undefined,
      });
    } catch (error) {
      response = null;
    }
    if (timer) clearTimeout(timer);
    var answer = {};
    if (response) {
      try {
        answer = await response.json();
      } catch (error) {
        answer = {};
      }
    }

    state.posting = false;
    els.send.disabled = false;
    els.send.textContent = t.send;
    els.form.removeAttribute("aria-busy");

    if (!response) {
      setStatus(t.network, "bad");
    } else if (response.status === 201) {
      thank(answer && answer.disposition);
      return;
    } else if (response.status === 400) {
      showInvalid(answer || {});
      return;
    } else if (response.status === 429) {
      setStatus(t.tooMany, "bad");
    } else {
      // 403 (origin not allowed), 404 (unknown key), 5xx: nothing the customer can fix.
      warn("POST " + config.endpoint + " answered " + response.status + (answer && answer.detail ? ": " + answer.detail : ""));
      setStatus(t.failed, "bad");
    }
    if (state.isOpen && !els.dialog.contains(document.activeElement)) els.send.focus();
  }

  function thank(disposition) {
    state.sent = true;
    var queued = disposition === "queued" || disposition === "critical";
    els.form.hidden = true;
    els.done.hidden = false;
    setStatus(queued ? t.thanksQueued : t.thanksAcknowledged, "ok");
    if (state.isOpen) els.done.focus();
  }

  function showInvalid(answer) {
    var fields = answer.fields && typeof answer.fields === "object" && !Array.isArray(answer.fields) ? answer.fields : {};
    var general = [];
    Object.keys(fields).forEach(function (name) {
      var messages = messagesOf(fields[name]);
      if (!messages.length) return;
      if (!(FIELD_IDS[name] && showError(name, messages))) general = general.concat(messages);
    });
    if (Array.isArray(answer.fields)) general = general.concat(messagesOf(answer.fields));
    var marked = Boolean(els.form.querySelector("[aria-invalid=true]"));
    if (!marked && !general.length) general.push(answer.detail || t.failed);
    setStatus((marked ? [t.invalid] : []).concat(general).join(" "), "bad");
    if (marked) focusFirstInvalid();
    else if (state.isOpen && !els.dialog.contains(document.activeElement)) els.send.focus();
  }

  function warn(message) {
    if (window.console && console.warn) console.warn("[Appease feedback] " + message);
  }

  // --- Start ---------------------------------------------------------------------------

  window.AppeaseFeedback = { open: open, close: close };

  if (!config.siteKey) {
    warn("data-site-key is missing on the script tag; the widget is not shown.");
    return;
  }
  if (!config.endpoint) {
    warn("data-endpoint is not a valid URL; the widget is not shown.");
    return;
  }
  if (document.body) build();
  else document.addEventListener("DOMContentLoaded", build);
})();
