// The one check of the project's settings, for every way they enter the page: a project zip, the
// saved project at start, the Settings form. The ranges are the engine's own (`rules().settings`,
// copied into engine/rules.js by a test that fails when they differ), so a value that passes here
// is one the engine takes; a stored value the engine refused would stop every later start.
// No DOM here.

import { DEFAULT_THRESHOLD } from '../engine/classifier.js';
import { RULES } from '../engine/rules.js';

// Defaults of the session's settings; the training defaults are `rules.train`. Augmented views:
// the engine's head-only default, also with fine-tuning (the CLI's 2 views for a trainable stage
// would triple the embedding time and fill the browser's stage-input cap 3× sooner).
export const PAGE_DEFAULTS = { augment: RULES.defaultAugment, threshold: DEFAULT_THRESHOLD };

function fits(setting, v) {
  if (v === null) return setting.optional;
  switch (setting.type) {
    case 'int': return Number.isInteger(v) && v >= setting.min && v <= setting.max;
    case 'number': return typeof v === 'number' && Number.isFinite(v) && v >= setting.min && v <= setting.max;
    case 'choice': return setting.choices.includes(v);
    case 'bool': return typeof v === 'boolean';
    default: return false;
  }
}

/** The default of setting `key`: the engine's training default, else the page's. */
export function defaultOf(key, rules = RULES) {
  return key in rules.train ? rules.train[key] : PAGE_DEFAULTS[key];
}

/** Shown in a notice: at most 40 characters of what the file held. */
function shown(v) {
  let s;
  try { s = JSON.stringify(v); } catch { s = String(v); }
  s = String(s ?? v);
  return s.length > 40 ? `${s.slice(0, 39)}…` : s;
}

/**
 * `raw` as settings the engine takes: `{settings, reset: [{key, value, default}], dropped: [key]}`.
 * Keys the engine does not know are dropped (a file may hold anything); each value out of its
 * range or of the wrong type is replaced by its default and listed in `reset`; absent keys stay
 * absent (the project fills in defaults). Never throws.
 */
export function cleanSettings(raw, rules = RULES) {
  const settings = {};
  const reset = [];
  const dropped = [];
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { settings, reset, dropped };
  const byKey = new Map(rules.settings.map((s) => [s.key, s]));
  for (const key of Object.keys(raw)) {
    const setting = byKey.get(key);
    if (!setting) { dropped.push(key); continue; }
    const v = raw[key];
    if (v === undefined) continue;
    if (fits(setting, v)) settings[key] = v;
    else {
      settings[key] = defaultOf(key, rules);
      reset.push({ key, value: shown(v), default: shown(settings[key]) });
    }
  }
  return { settings, reset, dropped };
}

/** A number typed into the form as setting `key` takes it: clamped, rounded, or null when unreadable. */
export function fromForm(key, text, rules = RULES) {
  const setting = rules.settings.find((s) => s.key === key);
  const v = Number(text);
  if (!setting || text === '' || !Number.isFinite(v)) return null;
  const n = setting.type === 'int' ? Math.round(v) : v;
  return Math.min(setting.max, Math.max(setting.min, n));
}
