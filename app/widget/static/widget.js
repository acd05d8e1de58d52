/* BotSmith chat widget.
 *
 *   <script src="https://HOST/widget.js" data-chatbot-id="BOT_ID" async></script>
 *
 * A launcher button and a chat panel inside a Shadow DOM, talking to the public API of the
 * host the script was loaded from. Everything the bot or a visitor says is shown as text.
 * data-mode="page" fills the page with the panel (the hosted /chat/BOT_ID page uses it).
 */
(() => {
  "use strict";

  const script = document.currentScript;
  if (!script || !script.dataset.chatbotId) return;
  const botId = script.dataset.chatbotId;
  const pageMode = script.dataset.mode === "page";
  const api = new URL(script.src, location.href).origin;
  const base = `${api}/api/public/chatbots/${encodeURIComponent(botId)}`;
  const storageKey = `botsmith:${botId}`;
  const MAX_STORED = 60;
  const streams = typeof ReadableStream !== "undefined" && typeof TextDecoder !== "undefined";

  const CSS = `
:host { all: initial; }
.bs { --accent: #2563eb; --on-accent: #fff; --bg: #fff; --fg: #111827; --muted: #6b7280;
  --bubble: #f3f4f6; --border: #e5e7eb;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); }
.bs.dark { --bg: #111827; --fg: #f9fafb; --muted: #9ca3af; --bubble: #1f2937; --border: #374151; }
@media (prefers-color-scheme: dark) {
  .bs.auto { --bg: #111827; --fg: #f9fafb; --muted: #9ca3af; --bubble: #1f2937; --border: #374151; }
}
* { box-sizing: border-box; }
button { font: inherit; cursor: pointer; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.launcher { position: fixed; bottom: 20px; right: 20px; z-index: 2147483000; width: 56px;
  height: 56px; border-radius: 50%; border: 0; background: var(--accent); color: var(--on-accent);
  box-shadow: 0 6px 20px rgba(0,0,0,.25); display: grid; place-items: center; }
.left .launcher { right: auto; left: 20px; }
.launcher svg { width: 28px; height: 28px; fill: currentColor; }
.panel { position: fixed; bottom: 88px; right: 20px; z-index: 2147483000; width: 380px;
  height: min(620px, calc(100vh - 110px)); display: flex; flex-direction: column;
  background: var(--bg); color: var(--fg); border: 1px solid var(--border); border-radius: 14px;
  box-shadow: 0 12px 40px rgba(0,0,0,.28); overflow: hidden; }
.left .panel { right: auto; left: 20px; }
.panel[hidden] { display: none; }
.page .panel { position: static; width: 100%; height: 100vh; border: 0; border-radius: 0;
  box-shadow: none; }
header { display: flex; align-items: center; gap: 10px; padding: 12px 14px;
  background: var(--accent); color: var(--on-accent); }
header img { width: 32px; height: 32px; border-radius: 50%; object-fit: cover; }
header h2 { flex: 1; margin: 0; font-size: 16px; font-weight: 600; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; }
header button { background: transparent; border: 0; color: inherit; font-size: 20px;
  line-height: 1; padding: 4px 8px; border-radius: 6px; }
.log { flex: 1; overflow-y: auto; padding: 14px; display: flex; flex-direction: column; gap: 10px; }
.msg { max-width: 85%; padding: 9px 12px; border-radius: 12px; white-space: pre-wrap;
  overflow-wrap: anywhere; }
.msg.user { align-self: flex-end; background: var(--accent); color: var(--on-accent); }
.msg.bot { align-self: flex-start; background: var(--bubble); }
.msg.error { background: transparent; border: 1px solid #dc2626; color: #dc2626; }
.msg[aria-busy="true"] .text:empty::after { content: "…"; color: var(--muted); }
.sources { margin: 8px 0 0; padding-left: 18px; font-size: 13px; color: var(--muted); }
.sources a { color: inherit; }
.rate { display: flex; gap: 6px; margin-top: 6px; }
.rate button { border: 1px solid var(--border); background: var(--bg); color: var(--muted);
  border-radius: 999px; padding: 3px 9px; line-height: 0; }
.rate svg { width: 14px; height: 14px; fill: currentColor; }
.rate [data-rating="down"] svg { transform: rotate(180deg); }
.rate button[aria-pressed="true"] { border-color: var(--accent); background: var(--accent);
  color: var(--on-accent); }
.suggestions { display: flex; flex-wrap: wrap; gap: 6px; padding: 0 14px 8px; }
.suggestions button { border: 1px solid var(--accent); color: var(--accent); background: var(--bg);
  border-radius: 999px; padding: 4px 12px; font-size: 13px; }
.status { min-height: 0; padding: 0 14px; font-size: 13px; color: #dc2626; }
.status:not(:empty) { padding: 6px 14px; }
form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid var(--border); }
textarea { flex: 1; resize: none; font: inherit; color: var(--fg); background: var(--bg);
  border: 1px solid var(--border); border-radius: 10px; padding: 8px 10px; max-height: 120px; }
form button { border: 0; border-radius: 10px; padding: 0 14px; background: var(--accent);
  color: var(--on-accent); }
form button:disabled, textarea:disabled { opacity: .55; cursor: not-allowed; }
@media (max-width: 480px) {
  .panel { inset: 0; width: 100%; height: 100%; border-radius: 0; border: 0; }
  .panel:not([hidden]) ~ .launcher { display: none; }
}`;

  const THUMB_ICON =
    '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z"/></svg>';
  const CHAT_ICON =
    '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';

  // -- state that survives reloads ------------------------------------------------------------

  function newSession() {
    const id = crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now();
    return { session: id.replace(/[^A-Za-z0-9_-]/g, ""), conversation: null, messages: [] };
  }

  function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(storageKey) || "null");
      if (saved && typeof saved.session === "string" && Array.isArray(saved.messages)) return saved;
    } catch (_) {
      /* storage blocked or damaged: start afresh */
    }
    return newSession();
  }

  function save() {
    state.messages = state.messages.filter((m) => !m.pending).slice(-MAX_STORED);
    try {
      localStorage.setItem(storageKey, JSON.stringify(state));
    } catch (_) {
      /* private mode: the conversation lasts as long as the page */
    }
  }

  let state = load();
  let config = null;
  let busy = false;

  // -- DOM -------------------------------------------------------------------------------------

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(key, value);
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const host = el("botsmith-chat", { "data-chatbot-id": botId });
  const shadow = host.attachShadow({ mode: "open" });
  if (shadow.adoptedStyleSheets !== undefined && typeof CSSStyleSheet === "function") {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
  } else {
    shadow.appendChild(el("style", {}, CSS));
  }
  const root = el("div", { class: `bs auto${pageMode ? " page" : ""}` });
  const panel = el("section", { class: "panel", role: "dialog", "aria-label": "Chat" });
  const header = el("header");
  const avatar = el("img", { alt: "", hidden: "" });
  const title = el("h2", {}, "Chat");
  const restart = el("button", { type: "button", "aria-label": "New conversation", title: "New conversation" }, "↺");
  const close = el("button", { type: "button", "aria-label": "Close chat", title: "Close" }, "×");
  header.append(avatar, title, restart);
  if (!pageMode) header.append(close);
  const log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const suggestions = el("div", { class: "suggestions" });
  const status = el("div", { class: "status", role: "status" });
  const form = el("form");
  const input = el("textarea", { rows: "1", maxlength: "4000", "aria-label": "Your message", placeholder: "Ask a question…" });
  const sendButton = el("button", { type: "submit", "aria-label": "Send" }, "➤");
  form.append(input, sendButton);
  panel.append(header, log, suggestions, status, form);
  const launcher = el("button", { type: "button", class: "launcher", "aria-label": "Open chat", "aria-expanded": "false" });
  launcher.innerHTML = CHAT_ICON; // a constant: nothing from the network
  root.append(panel);
  if (!pageMode) {
    panel.hidden = true;
    root.append(launcher);
  }
  shadow.append(root);

  // -- rendering ---------------------------------------------------------------------------------

  function safeUrl(url) {
    try {
      const parsed = new URL(url);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (_) {
      return null;
    }
  }

  function renderSources(node, citations) {
    node.querySelector(".sources")?.remove();
    if (!citations || !citations.length) return;
    const list = el("ol", { class: "sources", "aria-label": "Sources" });
    for (const citation of citations) {
      const item = el("li");
      const label = citation.title || citation.heading || "Source";
      const href = citation.url ? safeUrl(citation.url) : null;
      item.append(href ? el("a", { href, target: "_blank", rel: "noopener noreferrer" }, label) : el("span", {}, label));
      list.append(item);
    }
    node.append(list);
  }

  function renderRating(node, message) {
    node.querySelector(".rate")?.remove();
    if (!message.id || message.error || message.role === "agent") return;
    const bar = el("div", { class: "rate", role: "group", "aria-label": "Was this helpful?" });
    for (const [rating, label] of [["up", "Helpful"], ["down", "Not helpful"]]) {
      const button = el("button", { type: "button", "aria-label": label, "aria-pressed": String(message.rating === rating), "data-rating": rating });
      button.innerHTML = THUMB_ICON; // a constant: nothing from the network
      button.addEventListener("click", () => rate(message, rating, node));
      bar.append(button);
    }
    node.append(bar);
  }

  function renderMessage(message) {
    const kind = message.role === "user" ? "user" : `bot${message.error ? " error" : ""}`;
    const node = el("div", { class: `msg ${kind}${message.role === "agent" ? " agent" : ""}` });
    if (message.agent) node.append(el("div", { class: "who" }, message.agent));
    node.append(el("div", { class: "text" }, message.text));
    if (message.role !== "user") {
      renderSources(node, message.citations);
      renderRating(node, message);
    }
    log.append(node);
    log.scrollTop = log.scrollHeight;
    return node;
  }

  function renderAll() {
    log.replaceChildren();
    status.textContent = "";
    if (config && config.welcome_message) renderMessage({ role: "bot", text: config.welcome_message, welcome: true });
    for (const message of state.messages) renderMessage(message);
    suggestions.replaceChildren();
    if (config && !state.messages.length) {
      for (const question of (config.appearance || {}).suggested_questions || []) {
        const chip = el("button", { type: "button" }, question);
        chip.addEventListener("click", () => send(question));
        suggestions.append(chip);
      }
    }
    renderLeadForm();
    renderHandoff();
  }

  function setAvailable(available, reason) {
    input.disabled = sendButton.disabled = !available;
    status.textContent = available ? "" : reason;
  }

  function applyConfig(bot) {
    config = bot;
    const look = bot.appearance || {};
    title.textContent = look.title || bot.name;
    panel.setAttribute("aria-label", `Chat with ${title.textContent}`);
    root.classList.remove("auto", "dark", "light");
    root.classList.add(look.theme || "auto");
    if (look.position === "bottom-left") root.classList.add("left");
    if (look.accent_color) {
      root.style.setProperty("--accent", look.accent_color);
      root.style.setProperty("--on-accent", readableOn(look.accent_color));
    }
    const src = look.avatar_url ? safeUrl(look.avatar_url) : null;
    if (src) {
      avatar.src = src;
      avatar.hidden = false;
    }
    renderAll();
  }

  function readableOn(hex) {
    const n = parseInt(hex.slice(1), 16);
    const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
    return 0.299 * r + 0.587 * g + 0.114 * b > 160 ? "#111827" : "#ffffff";
  }

  // -- talking to the API ------------------------------------------------------------------------

  async function problem(response) {
    let detail = "";
    try {
      detail = (await response.json()).detail || "";
    } catch (_) {
      /* not JSON */
    }
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After") || (detail.match(/(\d+) s/) || [])[1];
      return `You're sending messages too quickly. Please wait${wait ? ` ${wait} s` : " a moment"} and try again.`;
    }
    if (response.status === 403 || response.status === 404) {
      return response.status === 404 && state.conversation
        ? "This conversation is no longer available. Start a new one with ↺."
        : "This chat isn't available here.";
    }
    if (response.status === 422) return detail || "That message can't be sent.";
    return "Something went wrong on our side. Please try again.";
  }

  async function send(text) {
    text = text.trim();
    if (!text || busy || input.disabled) return;
    busy = true;
    sendButton.disabled = true;
    status.textContent = "";
    suggestions.replaceChildren();
    const question = { role: "user", text };
    state.messages.push(question);
    renderMessage(question);
    const answer = { role: "bot", text: "", citations: [], pending: true };
    state.messages.push(answer);
    const node = renderMessage(answer);
    node.setAttribute("aria-busy", "true");
    const textNode = node.querySelector(".text");
    const body = { message: text, session_id: state.session, stream: streams };
    if (state.conversation) body.conversation_id = state.conversation;
    try {
      const response = await fetch(`${base}/chat`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: streams ? "text/event-stream" : "application/json" },
        body: JSON.stringify(body),
      });
      if (!response.ok) throw new Error(await problem(response));
      const kind = response.headers.get("Content-Type") || "";
      if (streams && response.body && kind.startsWith("text/event-stream")) {
        await readEvents(response, (event, data) => {
          if (event === "start") {
            state.conversation = data.conversation_id;
            answer.id = data.message_id;
          } else if (event === "token") {
            answer.text += data.text;
            textNode.textContent = answer.text;
            log.scrollTop = log.scrollHeight;
          } else if (event === "sources") {
            answer.citations = data.sources;
          } else if (event === "handoff") {
            handoffNotice(answer, data);
          } else if (event === "end") {
            answer.id = data.message_id;
            answer.answered = data.answered;
          } else if (event === "error") {
            throw new Error("The answer could not be completed. Please try again.");
          }
        });
      } else {
        const data = await response.json();
        state.conversation = data.conversation_id;
        Object.assign(answer, { id: data.message_id, text: data.answer, citations: data.sources, answered: data.answered });
        textNode.textContent = answer.text;
        if (data.handoff) handoffNotice(answer, data.handoff);
      }
      if (!answer.id) throw new Error("The answer could not be completed. Please try again.");
    } catch (error) {
      answer.error = true;
      answer.text = error instanceof TypeError ? "Can't reach the chat right now. Check your connection and try again." : error.message;
      node.classList.add("error");
      textNode.textContent = answer.text;
    } finally {
      delete answer.pending;
      node.removeAttribute("aria-busy");
      if (answer.error) state.messages.splice(state.messages.indexOf(answer), 1);
      if (answer.held) dropHeldTurn(answer, node);
      renderSources(node, answer.citations);
      renderRating(node, answer);
      save();
      busy = false;
      sendButton.disabled = input.disabled;
      leadAfterAnswer(answer);
    }
  }

  async function readEvents(response, handle) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (data.length) handle(event, JSON.parse(data.join("\n")));
      }
    }
  }

  async function rate(message, rating, node) {
    const previous = message.rating;
    message.rating = rating;
    renderRating(node, message);
    try {
      const response = await fetch(`${base}/messages/${encodeURIComponent(message.id)}/feedback`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ rating, session_id: state.session }),
      });
      if (!response.ok) throw new Error(await problem(response));
      save();
    } catch (error) {
      message.rating = previous;
      renderRating(node, message);
      status.textContent = error instanceof TypeError ? "Your feedback couldn't be sent." : error.message;
    }
  }

  // -- lead form -------------------------------------------------------------------------------
  // The bot's lead form (config.lead_form, null when it has none): shown at the start (the chat
  // waits for it), after N visitor messages, or right after an "I don't know" answer; once per
  // visitor session, remembered in localStorage.

  const LEAD_CSS = `
.lead { display: flex; flex-direction: column; gap: 8px; align-self: stretch; padding: 12px;
  border: 1px solid var(--border); border-top: 1px solid var(--border); border-radius: 12px;
  background: var(--bubble); }
.lead h3 { margin: 0; font-size: 15px; font-weight: 600; }
.lead label { display: flex; flex-direction: column; gap: 3px; font-size: 13px; color: var(--muted); }
.lead input:not([type=checkbox]), .lead textarea { flex: none; font: inherit; color: var(--fg);
  background: var(--bg); border: 1px solid var(--border); border-radius: 8px; padding: 7px 9px; }
.lead textarea { resize: vertical; max-height: 160px; }
.lead [aria-invalid="true"] { border-color: #dc2626; }
.lead .consent { flex-direction: row; align-items: flex-start; gap: 8px; color: var(--fg); }
.lead .consent input { margin: 3px 0 0; accent-color: var(--accent); }
.lead .problem, .lead .alert { font-size: 12px; color: #dc2626; }
.lead .problem:empty, .lead .alert:empty { display: none; }
.lead .actions { display: flex; gap: 8px; }
.lead button { padding: 8px 14px; }
.lead button.secondary { background: transparent; color: var(--muted); border: 1px solid var(--border); }`;
  const LEAD_FIELDS = {
    name: { label: "Name", max: 100, type: "text", autocomplete: "name" },
    email: { label: "Email", max: 254, type: "email", autocomplete: "email" },
    phone: { label: "Phone", max: 32, type: "tel", autocomplete: "tel" },
    company: { label: "Company", max: 200, type: "text", autocomplete: "organization" },
    message: { label: "Message", max: 2000 },
  };
  const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
  const PHONE = /^\+?[0-9 ().-]+$/;
  const leadKey = `${storageKey}:lead`;
  let leadSaved = null; // { session, status: "open" | "done" | "dismissed" }
  let leadCard = null;

  if (shadow.adoptedStyleSheets !== undefined && typeof CSSStyleSheet === "function") {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(LEAD_CSS);
    shadow.adoptedStyleSheets = [...shadow.adoptedStyleSheets, sheet];
  } else {
    shadow.appendChild(el("style", {}, LEAD_CSS));
  }
  try {
    leadSaved = JSON.parse(localStorage.getItem(leadKey) || "null");
  } catch (_) {
    /* storage blocked or damaged: the form may show again */
  }

  function leadStatus() {
    return leadSaved && leadSaved.session === state.session ? leadSaved.status : null;
  }

  function setLeadStatus(status) {
    leadSaved = { session: state.session, status };
    if (!busy) save(); // the session is what the status is remembered for (a turn saves it too)
    try {
      localStorage.setItem(leadKey, JSON.stringify(leadSaved));
    } catch (_) {
      /* private mode: remembered as long as the page */
    }
  }

  function leadShown() {
    const settings = config && config.lead_form;
    if (!settings) return false;
    const status = leadStatus();
    return status === "open" || (!status && settings.trigger === "start");
  }

  function renderLeadForm() {
    leadCard?.remove();
    leadCard = null;
    const shown = leadShown();
    const waiting = shown && config.lead_form.trigger === "start";
    form.style.display = waiting ? "none" : "";
    if (waiting) suggestions.replaceChildren();
    if (!shown) return;
    leadCard = buildLeadCard(config.lead_form);
    log.append(leadCard);
    log.scrollTop = log.scrollHeight;
  }

  function leadAfterAnswer(answer) {
    const settings = config && config.lead_form;
    if (!settings || answer.error || leadStatus()) return;
    const asked = state.messages.filter((m) => m.role === "user").length;
    if (
      (settings.trigger === "after_messages" && asked >= settings.after_messages) ||
      (settings.trigger === "unanswered" && answer.answered === false)
    ) {
      setLeadStatus("open");
      renderLeadForm();
    }
  }

  function buildLeadCard(settings) {
    const card = el("form", { class: "lead", "aria-label": settings.title, novalidate: "" });
    card.append(el("h3", {}, settings.title));
    const inputs = {};
    const problems = {};
    for (const [name, field] of Object.entries(LEAD_FIELDS)) {
      const mode = settings.fields[name];
      if (mode !== "optional" && mode !== "required") continue;
      const label = el("label", {}, `${field.label}${mode === "required" ? " *" : ""}`);
      const input = el(field.type ? "input" : "textarea", {
        name,
        type: field.type,
        rows: field.type ? null : "3",
        maxlength: String(field.max),
        autocomplete: field.autocomplete,
        required: mode === "required" ? "" : null,
        "aria-describedby": `bs-lead-${name}`,
      });
      problems[name] = el("span", { class: "problem", id: `bs-lead-${name}` });
      label.append(input, problems[name]);
      card.append(label);
      inputs[name] = input;
    }
    let consent = null;
    if (settings.consent_text) {
      const label = el("label", { class: "consent" });
      consent = el("input", { type: "checkbox", name: "consent", required: "", "aria-describedby": "bs-lead-consent" });
      label.append(consent, el("span", {}, settings.consent_text));
      problems.consent = el("span", { class: "problem", id: "bs-lead-consent" });
      card.append(label, problems.consent);
    }
    const alert = el("div", { class: "alert", role: "alert" });
    const actions = el("div", { class: "actions" });
    const submit = el("button", { type: "submit" }, settings.submit_label);
    actions.append(submit);
    if (settings.trigger !== "start") {
      const later = el("button", { type: "button", class: "secondary" }, "Not now");
      later.addEventListener("click", () => {
        setLeadStatus("dismissed");
        renderLeadForm();
      });
      actions.append(later);
    }
    card.append(alert, actions);

    function show(found) {
      for (const [name, node] of Object.entries(problems)) {
        node.textContent = found[name] || "";
        const control = name === "consent" ? consent : inputs[name];
        if (found[name]) control.setAttribute("aria-invalid", "true");
        else control.removeAttribute("aria-invalid");
      }
      const first = Object.keys(problems).find((name) => found[name]);
      if (first) (first === "consent" ? consent : inputs[first]).focus();
    }

    card.addEventListener("submit", async (event) => {
      event.preventDefault();
      alert.textContent = "";
      const values = {};
      const found = {};
      for (const [name, input] of Object.entries(inputs)) {
        const value = input.value.trim();
        if (value) values[name] = value;
        else if (input.required) found[name] = "Please fill this in.";
      }
      if (values.email && !EMAIL.test(values.email)) found.email = "Please enter a valid email address.";
      if (values.phone && (!PHONE.test(values.phone) || values.phone.replace(/\D/g, "").length < 6)) {
        found.phone = "Please enter a valid phone number.";
      }
      if (consent && !consent.checked) found.consent = "Please agree to continue.";
      if (!Object.keys(found).length && !Object.keys(values).length) {
        found[Object.keys(inputs)[0]] = "Please fill in at least one field.";
      }
      show(found);
      if (Object.keys(found).length) return;
      const body = { session_id: state.session, consent: Boolean(consent && consent.checked), ...values };
      if (state.conversation) body.conversation_id = state.conversation;
      submit.disabled = true;
      try {
        const response = await fetch(`${base}/leads`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(body),
        });
        if (!response.ok) {
          if (response.status !== 422) throw new Error(await problem(response));
          const refusal = await response.json().catch(() => ({}));
          const byField = {};
          for (const error of refusal.errors || []) {
            if (error.field in problems) byField[error.field] = error.message;
          }
          show(byField);
          throw new Error(Object.keys(byField).length ? "Please check the highlighted fields." : refusal.detail || "Please check your details.");
        }
        setLeadStatus("done");
        renderLeadForm();
        renderMessage({ role: "bot", text: "Thank you! We'll be in touch.", welcome: true });
        if (!form.style.display) input.focus();
      } catch (error) {
        alert.textContent = error instanceof TypeError ? "Your details couldn't be sent. Check your connection and try again." : error.message;
      } finally {
        submit.disabled = false;
      }
    });
    return card;
  }

  // -- human handoff ---------------------------------------------------------------------------
  // "Talk to a person" (shown when config.handoff.enabled) hands this conversation to a person;
  // the widget then follows the conversation on the visitor WebSocket: the waiting state, the
  // agent's messages with the agent's name, the fallback message when nobody comes, and the end.
  // state.handoff survives reloads (the socket is opened again).

  const HANDOFF_CSS = `
.handoff { display: flex; align-items: center; gap: 8px; padding: 6px 14px; font-size: 13px;
  color: var(--muted); border-top: 1px solid var(--border); }
.handoff[hidden], .handoff button[hidden] { display: none; }
.handoff .note { flex: 1; }
.handoff button { border: 1px solid var(--accent); color: var(--accent); background: var(--bg);
  border-radius: 999px; padding: 3px 12px; font-size: 13px; }
.msg.agent { border-left: 3px solid var(--accent); }
.msg .who { font-size: 12px; font-weight: 600; color: var(--accent); margin-bottom: 2px; }`;
  const HANDOFF_ASK = "I would like to talk to a person.";
  const handoffBar = el("div", { class: "handoff", hidden: "" });
  const handoffNote = el("span", { class: "note", role: "status" });
  const handoffButton = el("button", { type: "button" }, "Talk to a person");
  handoffBar.append(handoffNote, handoffButton);
  panel.insertBefore(handoffBar, form);
  if (shadow.adoptedStyleSheets !== undefined && typeof CSSStyleSheet === "function") {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(HANDOFF_CSS);
    shadow.adoptedStyleSheets = [...shadow.adoptedStyleSheets, sheet];
  } else {
    shadow.appendChild(el("style", {}, HANDOFF_CSS));
  }
  let socket = null;
  let socketFor = null;
  let socketRetries = 0;

  function handoffOpen() {
    const handoff = state.handoff;
    return !!handoff && handoff.conversation === state.conversation && (handoff.state === "waiting" || handoff.state === "active");
  }

  function renderHandoff() {
    const enabled = !!(config && config.handoff && config.handoff.enabled);
    const handoff = state.handoff && state.handoff.conversation === state.conversation ? state.handoff : null;
    let note = "";
    if (handoff && handoff.state === "waiting") note = "Waiting for a person to join…";
    else if (handoff && handoff.state === "active") note = `You're chatting with ${handoff.agent || "a person"}.`;
    else if (handoff && handoff.state === "closed") note = `${handoff.agent || "The person"} has left; the assistant answers again.`;
    handoffNote.textContent = note;
    handoffButton.hidden = !enabled || handoffOpen();
    handoffBar.hidden = !note && handoffButton.hidden;
    if (handoffOpen()) follow();
    else unfollow();
  }

  function setHandoff(handoffState, agent) {
    const known = state.handoff && state.handoff.conversation === state.conversation ? state.handoff.agent : null;
    state.handoff = { conversation: state.conversation, state: handoffState, agent: agent || known || null };
    if (!busy) save(); // a turn in progress saves when it ends
    renderHandoff();
  }

  function handoffNotice(answer, data) {
    // A chat turn's `handoff`: with no answer text, a person has the conversation and the bot
    // stayed silent (the turn's empty bubble goes).
    if (!answer.text) answer.held = true;
    setHandoff(data.state, data.agent_name);
  }

  function dropHeldTurn(answer, node) {
    node.remove();
    const index = state.messages.indexOf(answer);
    if (index >= 0) state.messages.splice(index, 1);
  }

  async function askForPerson() {
    if (busy || input.disabled) return;
    handoffButton.disabled = true;
    status.textContent = "";
    try {
      if (!state.conversation) await send(HANDOFF_ASK);
      if (!state.conversation || handoffOpen()) return; // no conversation, or the bot handed over
      const url = `${base}/conversations/${encodeURIComponent(state.conversation)}/handoff`;
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ session_id: state.session }),
      });
      if (!response.ok) throw new Error(await problem(response));
      const data = await response.json();
      setHandoff(data.state, data.agent_name);
    } catch (error) {
      status.textContent = error instanceof TypeError ? "Can't reach the chat right now. Please try again." : error.message;
    } finally {
      handoffButton.disabled = false;
    }
  }
  handoffButton.addEventListener("click", askForPerson);

  function follow() {
    const conversation = state.conversation;
    if (socket && socketFor === conversation) return;
    unfollow();
    const url = new URL("/api/ws", api);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("chatbot_id", botId);
    url.searchParams.set("session_id", state.session);
    const ws = new WebSocket(url.href);
    socket = ws;
    socketFor = conversation;
    ws.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (message.type === "welcome") {
        ws.send(JSON.stringify({ type: "subscribe", topic: "conversation", conversation_id: conversation }));
      } else if (message.type === "subscribed") {
        socketRetries = 0;
      } else if (message.type === "event" && message.topic === "conversation" && message.conversation_id === conversation) {
        onHandoffEvent(message.data);
      }
    });
    ws.addEventListener("close", () => {
      if (socket !== ws) return;
      socket = socketFor = null;
      if (!handoffOpen()) return;
      const wait = Math.min(30000, 1000 * 2 ** socketRetries++);
      setTimeout(() => {
        if (handoffOpen() && !socket) follow();
      }, wait);
    });
  }

  function unfollow() {
    const ws = socket;
    socket = socketFor = null;
    if (ws) ws.close();
  }

  function onHandoffEvent(data) {
    const said = data.message;
    if (said && (data.type === "handoff.message" || data.type === "handoff.fallback")) {
      if (state.messages.some((m) => m.key === said.id)) return;
      const message = said.role === "agent"
        ? { role: "agent", key: said.id, agent: said.agent_name, text: said.content }
        : { role: "bot", key: said.id, text: said.content };
      state.messages.push(message);
      if (!busy) save();
      renderMessage(message);
      if (said.role === "agent" && said.agent_name) setHandoff("active", said.agent_name);
      return;
    }
    if (data.state) setHandoff(data.state, data.agent_name);
  }

  // -- behaviour ---------------------------------------------------------------------------------

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close chat");
    log.scrollTop = log.scrollHeight;
    (input.disabled ? close : input).focus();
  }

  function hide() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open chat");
    launcher.focus();
  }

  launcher.addEventListener("click", () => (panel.hidden ? open() : hide()));
  close.addEventListener("click", hide);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !pageMode) {
      event.stopPropagation();
      hide();
    }
  });
  restart.addEventListener("click", () => {
    state = { ...newSession(), session: state.session };
    save();
    renderAll();
    input.focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  function mount() {
    document.body.append(host);
    renderAll();
    fetch(base, { headers: { Accept: "application/json" } })
      .then(async (response) => {
        if (!response.ok) throw new Error(await problem(response));
        applyConfig(await response.json());
        setAvailable(true, "");
      })
      .catch((error) => {
        root.classList.add("unavailable");
        setAvailable(false, error instanceof TypeError ? "This chat isn't available here." : error.message);
      });
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
