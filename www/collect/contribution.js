// A contribution: the photos one person took for a project on their phone (collect.html), or the
// corrections of a shared classifier's users, as one zip: a folder per class (so that any tool
// that reads class folders reads it) plus `sortwise-contribution.json`, which says who sent it,
// for which session, and which file is which photo. No DOM here; the teacher's page reads it with
// the same bounded zip reader as every other zip (project-zip.js), and treats all of it as
// untrusted: the manifest is checked field by field, and each photo must be a file of the zip,
// listed once.

import { zipSync, strToU8, strFromU8 } from '../vendor/fflate.js';
import { isImageName, openZipFile, readZipFile, ZipError } from '../project/project-zip.js';
import { isSessionCode } from './collect-link.js';
import { RULES } from '../engine/rules.js';

export const MANIFEST = 'sortwise-contribution.json';
export const CONTRIBUTION_FORMAT = 'sortwise-contribution';

export const CONTRIBUTION_LIMITS = {
  // photos one contributor may add to a project, over all their contributions
  maxPhotos: 1000,
  maxNameChars: 40,
  // a class name as long as the engine takes (its rules(), generated into engine/rules.js)
  maxLabelChars: RULES.maxLabelChars,
  maxManifestBytes: 1024 * 1024,
  // photos a second, per contributor, on a live connection (peer.js): a phone taking a burst
  // takes 4 a second, and one catching up after a lost connection sends what it kept; the
  // teacher's engine embeds ~25 a second on 2 cores (docs/BENCHMARKS.md), so more is a flood
  maxRate: 20,
};

const ID = /^[A-Za-z0-9_-]{8,40}$/;
// Control and format characters (bidi overrides, zero-width joiners) in a name shown to the
// teacher could disguise it: dropped.
const HIDDEN = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

export function newContributorId() {
  return [...crypto.getRandomValues(new Uint8Array(12))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** A contributor's name as shown: invisible characters dropped, trimmed, at most maxNameChars. */
export function cleanName(name) {
  return [...String(name ?? '').replace(HIDDEN, '').trim()].slice(0, CONTRIBUTION_LIMITS.maxNameChars).join('');
}

/** A file-system-safe folder name for a class (the manifest keeps the real name). */
function folderOf(label, i) {
  const safe = label.replace(/[\\/:*?"<>|\p{Cc}\p{Cf}]/gu, '_').replace(/^\.+/, '_').trim().slice(0, 60);
  return safe || `class-${i + 1}`;
}

/**
 * The zip of `photos` ([{label, bytes: Uint8Array (JPEG), taken: ms, predicted?}]) from
 * `contributor` ({id, name}) for `session`; `kind` 'photos' (collected for a class) or
 * 'corrections' (a classifier's user saying which class a photo really is).
 */
export function packContribution({ session = null, contributor, photos, kind = 'photos', created = new Date() }) {
  const files = {};
  const folders = new Map();
  const list = photos.map((p, i) => {
    if (!folders.has(p.label)) folders.set(p.label, folderOf(p.label, folders.size));
    const file = `${folders.get(p.label)}/${String(i + 1).padStart(4, '0')}.jpg`;
    files[file] = [p.bytes, { level: 0 }]; // JPEG: deflate gains nothing
    return { file, label: p.label, taken: p.taken ?? null, ...(p.predicted != null ? { predicted: p.predicted } : {}) };
  });
  const manifest = {
    format: CONTRIBUTION_FORMAT,
    version: 1,
    kind,
    session,
    contributor: { id: contributor.id, name: cleanName(contributor.name) },
    created: created.toISOString(),
    photos: list,
  };
  files[MANIFEST] = strToU8(JSON.stringify(manifest, null, 1));
  return zipSync(files);
}

/** Whether a zip's entry paths make it a contribution (its manifest at the top). */
export function isContributionPaths(paths) {
  return paths.some((p) => p.length === 1 && p[0] === MANIFEST);
}

/**
 * The manifest checked; throws Error naming what is wrong. `files`: the zip's entries by name.
 * Returns `{kind, session, contributor, photos: [{label, name, bytes, taken, predicted}]}`.
 */
export function checkContribution(json, files) {
  const bad = (why) => { throw new Error(`${MANIFEST}: ${why}`); };
  if (!json || typeof json !== 'object' || Array.isArray(json) || json.format !== CONTRIBUTION_FORMAT) bad('not a sortwise contribution');
  if (json.version !== 1) bad(`version ${json.version} is not one this page reads`);
  const kind = json.kind ?? 'photos';
  if (!['photos', 'corrections'].includes(kind)) bad(`unknown kind ${String(kind).slice(0, 20)}`);
  if (json.session != null && !isSessionCode(json.session)) bad('the session code is not one this page makes');
  const c = json.contributor;
  if (!c || typeof c !== 'object' || typeof c.id !== 'string' || !ID.test(c.id)) bad('no contributor id');
  const name = cleanName(typeof c.name === 'string' ? c.name : '');
  if (!Array.isArray(json.photos)) bad('no photo list');
  if (json.photos.length > CONTRIBUTION_LIMITS.maxPhotos) bad(`more than ${CONTRIBUTION_LIMITS.maxPhotos} photos`);
  const used = new Set();
  const photos = [];
  for (const p of json.photos) {
    if (!p || typeof p !== 'object' || typeof p.file !== 'string') bad('a photo without its file');
    if (used.has(p.file)) bad(`the file ${p.file.slice(0, 60)} is listed twice`);
    used.add(p.file);
    const bytes = files.get(p.file);
    if (!bytes) bad(`the file ${p.file.slice(0, 60)} is missing`);
    if (typeof p.label !== 'string' || !p.label.trim() || [...p.label].length > CONTRIBUTION_LIMITS.maxLabelChars) bad(`the class of ${p.file.slice(0, 60)}`);
    if (p.taken != null && !(Number.isFinite(p.taken) && p.taken >= 0)) bad(`the time of ${p.file.slice(0, 60)}`);
    if (p.predicted != null && (typeof p.predicted !== 'string' || [...p.predicted].length > CONTRIBUTION_LIMITS.maxLabelChars)) bad(`the prediction of ${p.file.slice(0, 60)}`);
    photos.push({ label: p.label, name: p.file, bytes, taken: p.taken ?? null, predicted: p.predicted ?? null });
  }
  return { kind, session: json.session ?? null, contributor: { id: c.id, name: name || c.id.slice(0, 6) }, photos };
}

/**
 * A contribution zip from a File or Blob, read whole with the bounded reader and checked before
 * anything of it is used: a damaged or crafted one throws, so that none of it is merged (each
 * file is all or nothing). Photos in the zip that the manifest does not list are ignored.
 */
export async function readContribution(blob) {
  let entries;
  try {
    ({ entries } = await readZipFile(blob, { filter: (parts) => (parts.length === 1 && parts[0] === MANIFEST) || isImageName(parts[parts.length - 1]) }));
  } catch (e) {
    if (e instanceof ZipError) throw new Error(`not a readable contribution (${e.code})`);
    throw e;
  }
  const files = new Map(entries.map((e) => [e.name, e.bytes]));
  const raw = files.get(MANIFEST);
  if (!raw) throw new Error(`${MANIFEST} is missing or could not be read`);
  if (raw.byteLength > CONTRIBUTION_LIMITS.maxManifestBytes) throw new Error(`${MANIFEST} is larger than any phone writes`);
  let json;
  try { json = JSON.parse(strFromU8(raw)); } catch (e) { throw new Error(`${MANIFEST} is not valid JSON (${e.message})`); }
  return checkContribution(json, files);
}

/** Whether a zip (File or Blob) is a contribution: its directory alone is read. */
export async function isContributionZip(blob) {
  try {
    const { kept } = await openZipFile(blob, { filter: (parts) => parts.length === 1 && parts[0] === MANIFEST });
    return kept.length > 0;
  } catch {
    return false; // not a readable zip: the class-folder reader says why
  }
}
