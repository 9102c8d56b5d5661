// Who sends photos or corrections from this browser: a random id, kept here so that one phone's
// photos group as one row in the teacher's roster, and the name its user typed. Shared by the
// collect view (collect/main.js) and a link's corrections (ui/corrections.js).

import { cleanName, newContributorId } from './contribution.js';

const ID_KEY = 'sortwise.collect.id';
const NAME_KEY = 'sortwise.collect.name';

function stored(key, make) {
  try {
    let v = localStorage.getItem(key);
    if (v == null && make) { v = make(); localStorage.setItem(key, v); }
    return v;
  } catch {
    return make ? make() : null; // storage off: this visit only
  }
}

/** The name last typed here ('' when none). */
export function savedName() { return stored(NAME_KEY) ?? ''; }

export function saveName(name) {
  try { localStorage.setItem(NAME_KEY, cleanName(name)); } catch { /* storage off: this visit only */ }
}

/** `{id, name}` of this browser's user, `name` as typed now (cleaned). */
export function contributor(name) { return { id: stored(ID_KEY, newContributorId), name: cleanName(name) }; }
