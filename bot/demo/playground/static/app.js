// The playground's page: a Discord channel drawn from what the local Discord holds, live over a WebSocket.
// Plain JavaScript with no dependencies: everything the page needs ships in this package.
"use strict";

const FLAG_EPHEMERAL = 64;
const FLAG_LOADING = 128;
const $ = (sel) => document.querySelector(sel);

const state = {
  person: localStorage.getItem("person") || "alice",
  channel: localStorage.getItem("channel") || null,
  snap: null,
  messages: new Map(),
  dismissed: new Set(),
  reply: null, // {id, name, ping}
  files: [], // attachments uploaded for the next message or command
  command: null, // {cmd, group, sub, options}
  suggestions: [],
  selected: 0,
  modal: null,
  ws: null,
};

function S(key, params) {
  let text = (state.snap && state.snap.strings[key]) || key;
  for (const [k, v] of Object.entries(params || {})) text = text.split("{" + k + "}").join(v);
  return text;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// ------------------------------------------------------------------------------------------ people
function userName(user) {
  return (user && (user.global_name || user.username)) || "?";
}
function personKeyOf(id) {
  const p = state.snap.people.find((x) => x.id === String(id));
  return p ? p.key : String(id) === state.snap.bot.id ? "bot" : "other";
}
const COLORS = ["#5865f2", "#3ba55c", "#eb459e", "#faa61a", "#ed4245", "#9b84ee"];
function avatar(user, small) {
  const isBot = user && user.bot;
  const id = (user && user.id) || "0";
  const color = isBot ? "#5865f2" : COLORS[Number(BigInt(id) % 6n)];
  return el("div", { class: "avatar" + (small ? " small" : ""), style: `background:${color}`, "aria-hidden": "true" },
    isBot ? "🖼" : userName(user).slice(0, 1).toUpperCase());
}

// ------------------------------------------------------------------------------------- markdown
function inline(text) {
  const out = document.createDocumentFragment();
  const rx = /(<@!?(\d+)>|<@&(\d+)>|<#(\d+)>|<t:(-?\d+)(?::([tTdDfFR]))?>|\*\*([^*]+)\*\*|`([^`]+)`|\*([^*\n]+)\*|_([^_\n]+)_|(https?:\/\/[^\s<>]+))/g;
  let last = 0;
  let m;
  while ((m = rx.exec(text))) {
    if (m.index > last) out.append(text.slice(last, m.index));
    last = rx.lastIndex;
    if (m[2]) {
      const p = state.snap.people.find((x) => x.id === m[2]);
      const name = p ? p.name : m[2] === state.snap.bot.id ? state.snap.bot.name : "user";
      out.append(el("span", { class: "mention", text: "@" + name }));
    } else if (m[3]) {
      const r = state.snap.roles.find((x) => x.id === m[3]);
      out.append(el("span", { class: "mention", text: "@" + (r ? r.name : "role") }));
    } else if (m[4]) {
      const c = state.snap.channels.find((x) => x.id === m[4]);
      out.append(el("span", { class: "mention", text: "#" + (c ? c.name : "channel") }));
    } else if (m[5]) {
      out.append(el("span", { class: "mention", text: timestamp(Number(m[5]), m[6] || "f") }));
    } else if (m[7]) out.append(el("strong", { text: m[7] }));
    else if (m[8]) out.append(el("code", { text: m[8] }));
    else if (m[9] || m[10]) out.append(el("em", { text: m[9] || m[10] }));
    else if (m[11]) out.append(el("a", { href: m[11], target: "_blank", rel: "noreferrer", text: m[11] }));
  }
  out.append(text.slice(last));
  return out;
}

function timestamp(seconds, style) {
  const when = new Date(seconds * 1000);
  const lang = state.snap.locale;
  if (style === "R") {
    const diff = Math.round((when - Date.now()) / 1000);
    const rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
    const abs = Math.abs(diff);
    if (abs < 60) return rtf.format(diff, "second");
    if (abs < 3600) return rtf.format(Math.round(diff / 60), "minute");
    if (abs < 86400) return rtf.format(Math.round(diff / 3600), "hour");
    return rtf.format(Math.round(diff / 86400), "day");
  }
  if (style === "d" || style === "D") return when.toLocaleDateString(lang);
  if (style === "t" || style === "T") return when.toLocaleTimeString(lang);
  return when.toLocaleString(lang);
}

function markdown(text) {
  const box = el("div", { class: "content" });
  text.split("\n").forEach((line, i) => {
    if (i) box.append("\n");
    if (line.startsWith("-# ")) box.append(el("span", { class: "subtext" }, inline(line.slice(3))));
    else if (line.startsWith("> ")) box.append(el("span", { class: "quote" }, inline(line.slice(2))));
    else if (/^#{1,3} /.test(line)) box.append(el("strong", {}, inline(line.replace(/^#+ /, ""))));
    else box.append(inline(line));
  });
  return box;
}

// ------------------------------------------------------------------------------------- messages
function visibleHere(msg) {
  return msg.channel_id === state.channel && !state.dismissed.has(msg.id);
}

function commandLabel(meta) {
  const cmd = state.snap.commands.find((c) => c.name === meta.name);
  const loc = cmd && cmd.name_localizations && cmd.name_localizations[state.snap.locale];
  return "/" + (loc || meta.name);
}

function renderMessage(msg) {
  const author = msg.author;
  const flags = Number(msg.flags || 0);
  const meta = msg.interaction_metadata;
  const node = el("article", {
    class: "msg" + (flags & FLAG_EPHEMERAL ? " ephemeral" : ""),
    "data-id": msg.id,
    "data-author": personKeyOf(author.id),
  });
  if (meta && meta.type === 2 && meta.command_type !== 3) {
    node.append(el("div", { class: "pre" }, avatar(meta.user, true),
      el("span", {}, inline(S("used", { name: userName(meta.user), command: commandLabel(meta) })))));
  } else if (msg.referenced_message) {
    const ref = msg.referenced_message;
    const snippet = (ref.content || "").slice(0, 80) || (ref.attachments && ref.attachments.length ? "🖼" : "…");
    node.append(el("div", { class: "reply-ref" }, "↱ ", avatar(ref.author, true), el("b", { text: userName(ref.author) }),
      el("span", {}, inline(snippet))));
  }
  node.append(avatar(author));
  const body = el("div", { class: "body" });
  const head = el("div", { class: "head" }, el("span", { class: "name", text: userName(author) }));
  if (author.bot) head.append(el("span", { class: "tag-app", text: S("app") }));
  head.append(el("time", { datetime: msg.timestamp, text: new Date(msg.timestamp).toLocaleTimeString(state.snap.locale) }));
  body.append(head);
  if (flags & FLAG_LOADING) {
    body.append(el("div", { class: "thinking", text: S("thinking", { name: userName(author) }) }));
  } else if (msg.content) {
    const content = markdown(msg.content);
    if (msg.edited_timestamp) content.append(el("span", { class: "edited", text: S("edited") }));
    body.append(content);
  } else if (msg.edited_timestamp && !(msg.embeds || []).length) {
    body.append(el("span", { class: "edited", text: S("edited") }));
  }
  const shownInEmbeds = new Set();
  for (const e of msg.embeds || []) {
    for (const key of ["image", "thumbnail"]) if (e[key] && e[key].url) shownInEmbeds.add(e[key].url);
  }
  const atts = (msg.attachments || []).filter((a) => !shownInEmbeds.has(a.url));
  if (atts.length) {
    body.append(el("div", { class: "attachments" }, atts.map((a) =>
      (a.content_type || "").startsWith("image/")
        ? el("a", { href: a.url, target: "_blank" }, el("img", { src: a.url, alt: a.description || a.filename, "data-filename": a.filename, onload: keepAtBottom, ...fitted(a, 300) }))
        : el("a", { class: "file", href: a.url, download: a.filename, text: "📄 " + a.filename }))));
  }
  for (const e of msg.embeds || []) body.append(renderEmbed(e, msg));
  if ((msg.components || []).length) body.append(renderComponents(msg));
  if (flags & FLAG_EPHEMERAL) {
    body.append(el("div", { class: "ephemeral-note" }, "👁 " + S("only_you") + " · ",
      el("a", { onclick: () => { state.dismissed.add(msg.id); node.remove(); }, text: S("dismiss") })));
  }
  node.append(body);
  node.append(renderTools(msg));
  // Right-click opens the Apps menu, as Discord's message context menu does.
  const menus = state.snap.commands.filter((c) => c.type === 3);
  if (menus.length && !(flags & FLAG_EPHEMERAL)) {
    node.addEventListener("contextmenu", (ev) => { ev.preventDefault(); showMenu(ev, msg, menus); });
  }
  return node;
}

// The size a picture will take, known before it loads, so the list does not jump as frames arrive.
function fitted(a, max) {
  if (!a.width || !a.height) return {};
  const k = Math.min(1, max / Math.max(a.width, a.height));
  return { width: Math.round(a.width * k), height: Math.round(a.height * k) };
}

function renderEmbed(e, msg) {
  const color = e.color ? "#" + Number(e.color).toString(16).padStart(6, "0") : null;
  const box = el("div", { class: "embed", style: color ? `border-left-color:${color}` : null });
  if (e.author && e.author.name) box.append(el("div", { class: "e-author", text: e.author.name }));
  if (e.title) box.append(el("div", { class: "e-title" }, e.url ? el("a", { href: e.url, target: "_blank", text: e.title }) : e.title));
  if (e.description) box.append(el("div", { class: "e-desc" }, markdown(e.description)));
  if ((e.fields || []).length) {
    box.append(el("div", { class: "e-fields" }, e.fields.map((f) =>
      el("div", { class: "e-field" + (f.inline ? " inline" : "") }, el("b", {}, inline(f.name)), markdown(f.value)))));
  }
  if (e.image && e.image.url) {
    const name = (msg.attachments || []).find((a) => a.url === e.image.url);
    box.append(el("div", { class: "e-image" }, el("img", { src: e.image.url, alt: S("image"), "data-filename": name ? name.filename : "", onload: keepAtBottom })));
  }
  if (e.thumbnail && e.thumbnail.url) box.append(el("div", { class: "e-thumb" }, el("img", { src: e.thumbnail.url, alt: "" })));
  const foot = [e.footer && e.footer.text, e.timestamp && new Date(e.timestamp).toLocaleString(state.snap.locale)].filter(Boolean);
  if (foot.length) box.append(el("div", { class: "e-footer", text: foot.join(" • ") }));
  return box;
}

function renderComponents(msg) {
  const box = el("div", { class: "components" });
  for (const row of msg.components) {
    const r = el("div", { class: "row" });
    for (const c of row.components || []) {
      if (c.type === 2) {
        const label = [c.emoji && c.emoji.name, c.label].filter(Boolean).join(" ");
        if (c.style === 5) {
          r.append(el("a", { class: "btn", href: c.url, target: "_blank", rel: "noreferrer", text: label + " ↗" }));
        } else {
          r.append(el("button", { class: `btn s${c.style || 2}`, disabled: !!c.disabled, type: "button", "aria-label": c.label || label,
            onclick: () => act({ kind: "button", message_id: msg.id, custom_id: c.custom_id }) }, label));
        }
      } else if (c.type === 3) {
        const sel = el("select", { disabled: !!c.disabled, onchange: (ev) =>
          act({ kind: "button", message_id: msg.id, custom_id: c.custom_id, values: [ev.target.value] }) },
        el("option", { value: "", text: c.placeholder || S("choose") }),
        (c.options || []).map((o) => el("option", { value: o.value, text: o.label, selected: !!o.default })));
        r.append(sel);
      }
    }
    box.append(r);
  }
  return box;
}

function renderTools(msg) {
  const tools = el("div", { class: "tools" });
  if (Number(msg.flags || 0) & FLAG_EPHEMERAL) return tools;
  tools.append(el("button", { type: "button", text: S("reply"), onclick: () => startReply(msg) }));
  const menus = state.snap.commands.filter((c) => c.type === 3);
  if (menus.length) {
    tools.append(el("button", { type: "button", text: S("apps"), onclick: (ev) => showMenu(ev, msg, menus) }));
  }
  const me = state.snap.people.find((p) => p.key === state.person);
  if (msg.author.id === me.id || me.moderator) {
    tools.append(el("button", { type: "button", text: S("delete"), onclick: () => act({ kind: "delete", message_id: msg.id }) }));
  }
  return tools;
}

function showMenu(ev, msg, menus) {
  const menu = $("#menu");
  menu.replaceChildren(...menus.map((c) => el("button", { type: "button", role: "menuitem",
    text: (c.name_localizations && c.name_localizations[state.snap.locale]) || c.name,
    onclick: () => { menu.hidden = true; act({ kind: "menu", message_id: msg.id, name: c.name }); } })));
  if (ev.type === "contextmenu") {
    menu.style.left = ev.clientX + "px";
    menu.style.top = ev.clientY + "px";
  } else {
    const rect = ev.target.getBoundingClientRect();
    menu.style.left = Math.max(8, rect.right - 200) + "px";
    menu.style.top = rect.bottom + 4 + "px";
  }
  menu.hidden = false;
  ev.stopPropagation();
}
document.addEventListener("click", () => { $("#menu").hidden = true; });

// Whether the list follows new messages: true while the reader is at the bottom (pictures that finish
// loading later keep it there).
let stickToBottom = true;
$("#messages").addEventListener("scroll", () => {
  const list = $("#messages");
  stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
});
function keepAtBottom() {
  if (stickToBottom) $("#messages").scrollTop = $("#messages").scrollHeight;
}

function placeMessage(msg) {
  const list = $("#messages");
  const old = list.querySelector(`[data-id="${msg.id}"]`);
  if (!visibleHere(msg)) { if (old) old.remove(); return; }
  const atBottom = stickToBottom;
  const node = renderMessage(msg);
  if (old) old.replaceWith(node);
  else {
    const id = BigInt(msg.id);
    const after = [...list.children].find((n) => BigInt(n.dataset.id) > id);
    list.insertBefore(node, after || null);
  }
  if (atBottom || !old) list.scrollTop = list.scrollHeight;
}

function renderAll() {
  const snap = state.snap;
  document.documentElement.lang = snap.locale;
  document.title = S("title");
  $("#guild-name").textContent = snap.guild.name;
  $("#channels-title").textContent = S("channels");
  if (!snap.channels.some((c) => c.id === state.channel)) state.channel = snap.channels[0].id;
  $("#channels").replaceChildren(...snap.channels.map((c) => el("li", {
    class: c.id === state.channel ? "active" : "", "data-channel": c.name,
    onclick: () => { state.channel = c.id; localStorage.setItem("channel", c.id); renderAll(); } },
  el("span", { class: "hash", text: "#" }), c.name, c.nsfw ? el("span", { class: "badge-nsfw", text: "18+" }) : null)));
  const channel = snap.channels.find((c) => c.id === state.channel);
  $("#channel-name").textContent = channel.name;
  $("#channel-badge").replaceChildren(channel.nsfw ? el("span", { class: "badge-nsfw", text: S("age_restricted") }) : "");
  $("#you-are").textContent = S("you_are");
  $("#people").replaceChildren(...snap.people.map((p) => el("button", {
    type: "button", class: "person" + (p.key === state.person ? " active" : ""), "data-person": p.key,
    onclick: () => switchPerson(p.key) },
  avatar({ id: p.id, global_name: p.name }), el("span", {}, p.name, el("small", { text: p.moderator ? S("moderator") : S("member") })))));
  $("#language-label span").textContent = S("language");
  $("#language").value = snap.locale;
  const banner = $("#banner");
  banner.className = snap.real_api ? "real" : "";
  banner.textContent = snap.real_api ? S("real_api", { base: snap.api_base }) : S("fake_api");
  const status = $("#status");
  status.hidden = snap.bot.connected;
  status.textContent = S("waiting_bot");
  $("#input").placeholder = state.command ? "" : S("message_in", { channel: channel.name }) + " — " + S("commands_hint");
  $("#send").textContent = S("send");
  $("#attach").title = S("attach");
  $("#modal-cancel").textContent = S("cancel");
  $("#modal-submit").textContent = S("submit");
  $("#messages").replaceChildren(el("div", { class: "welcome", "data-id": "0" },
    el("h2", { text: S("welcome", { channel: channel.name }) }), el("p", { text: S("welcome_text") })));
  [...state.messages.values()].sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1)).forEach(placeMessage);
  renderReplyBar();
  renderFiles();
}

// ------------------------------------------------------------------------------------- actions
async function act(body) {
  body.person = state.person;
  body.channel_id = body.channel_id || state.channel;
  const res = await fetch("/api/action", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) {
    const err = await res.json().catch(() => ({ error: res.statusText }));
    toast(S("error", { reason: err.error }));
    return false;
  }
  return true;
}

function toast(text) {
  const t = $("#toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

function switchPerson(key) {
  state.person = key;
  localStorage.setItem("person", key);
  cancelCommand();
  state.reply = null;
  connect();
}

function startReply(msg) {
  state.reply = { id: msg.id, name: userName(msg.author), ping: true };
  renderReplyBar();
  $("#input").focus();
}

function renderReplyBar() {
  const bar = $("#reply-bar");
  bar.hidden = !state.reply;
  if (!state.reply) return;
  $("#reply-text").textContent = S("replying_to", { name: state.reply.name });
  $("#reply-ping").textContent = state.reply.ping ? S("mention_on") : S("mention_off");
}
$("#reply-ping").addEventListener("click", () => { state.reply.ping = !state.reply.ping; renderReplyBar(); });
$("#reply-close").addEventListener("click", () => { state.reply = null; renderReplyBar(); });

function renderFiles() {
  const bar = $("#files-bar");
  const loose = state.files.filter((f) => !f.option);
  bar.hidden = !loose.length;
  bar.replaceChildren(...loose.map((f) => el("span", { class: "chip", text: "📎 " + f.filename })));
}

async function upload(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  const res = await fetch(`/api/upload?channel_id=${state.channel}&person=${encodeURIComponent(state.person)}`, { method: "POST", body: form });
  const data = await res.json();
  if (!res.ok) { toast(S("error", { reason: data.error })); return null; }
  return data;
}

$("#attach").addEventListener("click", () => $("#file-input").click());
$("#file-input").addEventListener("change", async (ev) => {
  for (const file of ev.target.files) {
    const att = await upload(file);
    if (att) state.files.push(att);
  }
  ev.target.value = "";
  renderFiles();
});

// ------------------------------------------------------------------------------ slash commands
function localized(obj, key) {
  const loc = obj[key + "_localizations"];
  return (loc && loc[state.snap.locale]) || obj[key];
}

function leafCommands() {
  const out = [];
  for (const cmd of state.snap.commands.filter((c) => (c.type || 1) === 1)) {
    const opts = cmd.options || [];
    const subs = opts.filter((o) => o.type === 1 || o.type === 2);
    if (!subs.length) { out.push({ cmd, label: localized(cmd, "name"), description: localized(cmd, "description"), options: opts }); continue; }
    for (const s of subs) {
      if (s.type === 1) {
        out.push({ cmd, sub: s.name, label: localized(cmd, "name") + " " + localized(s, "name"), description: localized(s, "description"), options: s.options || [] });
      } else {
        for (const s2 of (s.options || []).filter((o) => o.type === 1)) {
          out.push({ cmd, group: s.name, sub: s2.name, label: [cmd, s, s2].map((x) => localized(x, "name")).join(" "), description: localized(s2, "description"), options: s2.options || [] });
        }
      }
    }
  }
  return out;
}

function showSuggestions() {
  const list = $("#command-list");
  const text = $("#input").value;
  if (state.command || !text.startsWith("/")) { list.hidden = true; return; }
  const q = text.slice(1).toLowerCase();
  state.suggestions = leafCommands().filter((c) => c.label.toLowerCase().includes(q) || [c.cmd.name, c.group, c.sub].filter(Boolean).join(" ").includes(q));
  state.selected = Math.min(state.selected, Math.max(0, state.suggestions.length - 1));
  list.replaceChildren(...(state.suggestions.length ? state.suggestions.map((c, i) => el("div", {
    class: "cmd" + (i === state.selected ? " selected" : ""), role: "option", "data-command": [c.cmd.name, c.group, c.sub].filter(Boolean).join(" "),
    onclick: () => chooseCommand(c) }, el("b", { text: "/" + c.label }), el("span", { text: c.description || "" }))) : [el("div", { class: "cmd", text: S("no_commands") })]));
  list.hidden = false;
}

function chooseCommand(c) {
  state.command = c;
  $("#command-list").hidden = true;
  $("#input").value = "";
  $("#input").placeholder = "";
  const chip = $("#command-chip");
  chip.textContent = "/" + c.label;
  chip.hidden = false;
  const form = $("#command-form");
  form.replaceChildren(...c.options.map(optionField));
  form.hidden = !c.options.length;
  const first = form.querySelector("input, select, textarea");
  (first || $("#input")).focus();
}

function optionField(o) {
  const name = localized(o, "name");
  const attrs = { "data-option": o.name, "data-type": o.type, required: !!o.required, "aria-label": name };
  let input;
  if (o.choices && o.choices.length) {
    input = el("select", attrs, el("option", { value: "", text: S("choose") }),
      o.choices.map((ch) => el("option", { value: String(ch.value), text: localized(ch, "name") })));
  } else if (o.type === 5) {
    input = el("select", attrs, el("option", { value: "", text: S("choose") }), el("option", { value: "true", text: S("yes") }), el("option", { value: "false", text: S("no") }));
  } else if (o.type === 6 || o.type === 9) {
    input = el("select", attrs, el("option", { value: "", text: S("choose") }), state.snap.people.map((p) => el("option", { value: p.id, text: p.name })));
  } else if (o.type === 8) {
    input = el("select", attrs, el("option", { value: "", text: S("choose") }), state.snap.roles.map((r) => el("option", { value: r.id, text: r.name })));
  } else if (o.type === 11) {
    input = el("input", { ...attrs, type: "file" });
  } else if (o.autocomplete) {
    const list = el("datalist", { id: "ac-" + o.name });
    input = el("input", { ...attrs, type: "text", list: list.id, "data-autocomplete": "yes" });
    input.addEventListener("input", () => {
      clearTimeout(input.timer);
      input.timer = setTimeout(() => suggest(o.name, list), 150);
    });
    input.addEventListener("focus", () => suggest(o.name, list));
    return el("label", { class: o.required ? "req" : "", title: localized(o, "description") || "" },
      el("span", { text: name }), input, list);
  } else if (o.type === 4 || o.type === 10) {
    input = el("input", { ...attrs, type: "number", step: o.type === 4 ? "1" : "any", min: o.min_value, max: o.max_value });
  } else {
    input = el("input", { ...attrs, type: "text", maxlength: o.max_length, minlength: o.min_length });
  }
  const wide = o.type === 3 && !(o.choices && o.choices.length) && o.name === "prompt";
  return el("label", { class: (o.required ? "req" : "") + (wide ? " wide" : ""), title: localized(o, "description") || "" },
    el("span", { text: name }), input);
}

function currentOptions() {
  const options = {};
  for (const input of $("#command-form").querySelectorAll("[data-option]")) {
    if (input.type !== "file" && input.value !== "") options[input.dataset.option] = input.value;
  }
  return options;
}

// The bot's suggestions for the option being typed (an autocomplete interaction, answered with choices).
async function suggest(option, list) {
  const c = state.command;
  if (!c) return;
  const body = { kind: "autocomplete", person: state.person, channel_id: state.channel, name: c.cmd.name,
    group: c.group, subcommand: c.sub, options: currentOptions(), focused: option };
  const res = await fetch("/api/action", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) return;
  const data = await res.json();
  list.replaceChildren(...data.choices.map((ch) => el("option", { value: String(ch.value), label: localized(ch, "name") })));
}

function cancelCommand() {
  state.command = null;
  $("#command-chip").hidden = true;
  $("#command-form").hidden = true;
  $("#command-form").replaceChildren();
  if (state.snap) renderAll();
}

async function sendCommand() {
  const c = state.command;
  const options = {};
  for (const input of $("#command-form").querySelectorAll("[data-option]")) {
    if (input.type === "file") {
      if (!input.files.length) continue;
      const att = await upload(input.files[0]);
      if (!att) return;
      options[input.dataset.option] = att.id;
    } else if (input.value !== "") {
      options[input.dataset.option] = input.value;
    }
  }
  const ok = await act({ kind: "slash", name: c.cmd.name, group: c.group, subcommand: c.sub, options });
  if (ok) cancelCommand();
}

async function sendMessage() {
  const input = $("#input");
  const content = input.value;
  if (!content.trim() && !state.files.length) return;
  const body = { kind: "message", content, attachments: state.files.map((f) => f.id) };
  if (state.reply) { body.reply_to = state.reply.id; body.ping = state.reply.ping; }
  if (await act(body)) {
    input.value = "";
    state.files = [];
    state.reply = null;
    renderFiles();
    renderReplyBar();
  }
}

$("#composer").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (state.command) sendCommand();
  else if (!$("#command-list").hidden && state.suggestions.length) chooseCommand(state.suggestions[state.selected]);
  else sendMessage();
});
$("#input").addEventListener("input", () => { state.selected = 0; showSuggestions(); });
$("#input").addEventListener("keydown", (ev) => {
  const open = !$("#command-list").hidden && state.suggestions.length;
  if (open && (ev.key === "ArrowDown" || ev.key === "ArrowUp")) {
    ev.preventDefault();
    state.selected = (state.selected + (ev.key === "ArrowDown" ? 1 : -1) + state.suggestions.length) % state.suggestions.length;
    showSuggestions();
  } else if (open && (ev.key === "Tab")) {
    ev.preventDefault();
    chooseCommand(state.suggestions[state.selected]);
  } else if (ev.key === "Escape") {
    if (state.command) cancelCommand();
    $("#command-list").hidden = true;
  } else if (ev.key === "Backspace" && state.command && !$("#input").value) {
    cancelCommand();
  } else if (ev.key === "Enter" && !ev.shiftKey) {
    ev.preventDefault();
    $("#composer").requestSubmit();
  }
});
$("#command-form").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && ev.target.tagName !== "TEXTAREA") { ev.preventDefault(); $("#composer").requestSubmit(); }
  if (ev.key === "Escape") cancelCommand();
});
$("#language").addEventListener("change", (ev) => act({ kind: "locale", locale: ev.target.value }));

// ------------------------------------------------------------------------------------- modals
function openModal(ev) {
  state.modal = ev;
  const m = ev.modal;
  $("#modal-title").textContent = m.title || "";
  const fields = [];
  for (const row of m.components || []) {
    // Older modals put each text input in an action row; newer ones in a label.
    const inner = row.type === 18 ? row.component : (row.components || [])[0];
    if (!inner || inner.type !== 4) continue;
    const label = row.type === 18 ? row.label : inner.label;
    const attrs = { "data-field": inner.custom_id, required: inner.required !== false, placeholder: inner.placeholder,
      minlength: inner.min_length, maxlength: inner.max_length, "aria-label": label };
    const input = inner.style === 2 ? el("textarea", attrs) : el("input", { ...attrs, type: "text" });
    input.value = inner.value || "";
    fields.push(el("label", {}, el("span", { text: label }), input));
  }
  $("#modal-fields").replaceChildren(...fields);
  $("#modal").showModal();
}
$("#modal-cancel").addEventListener("click", () => $("#modal").close());
$("#modal-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const fields = {};
  for (const input of $("#modal-fields").querySelectorAll("[data-field]")) fields[input.dataset.field] = input.value;
  const m = state.modal;
  $("#modal").close();
  act({ kind: "modal", custom_id: m.modal.custom_id, fields, message_id: m.message_id, channel_id: m.channel_id });
});

// ------------------------------------------------------------------------------------- live
function handle(data) {
  if (data.type === "snapshot") {
    state.snap = data;
    state.messages = new Map(data.messages.map((m) => [m.id, m]));
    if (state.command) {
      const still = leafCommands().find((c) => c.cmd.name === state.command.cmd.name && c.sub === state.command.sub && c.group === state.command.group);
      if (!still) cancelCommand();
    }
    renderAll();
    document.body.dataset.ready = data.bot.connected && data.commands.length ? "yes" : "no";
  } else if (data.type === "message") {
    if (data.message.guild_id !== state.snap.guild.id) return;
    state.messages.set(data.message.id, data.message);
    placeMessage(data.message);
  } else if (data.type === "delete") {
    state.messages.delete(data.id);
    const node = $(`#messages [data-id="${data.id}"]`);
    if (node) node.remove();
  } else if (data.type === "modal") {
    openModal(data);
  } else if (data.type === "no_answer") {
    toast(S("no_answer"));
  }
}

function connect() {
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws?person=${encodeURIComponent(state.person)}`);
  state.ws = ws;
  ws.onmessage = (ev) => handle(JSON.parse(ev.data));
  ws.onclose = () => {
    if (state.ws !== ws) return;
    const status = $("#status");
    status.textContent = S("disconnected");
    status.hidden = false;
    setTimeout(connect, 1000);
  };
}
connect();
