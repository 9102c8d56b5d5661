// What a standalone `Sortwise` (client.js) needs to survive its worker: each image's label,
// embedding and (with fine-tuning) thumbnail, and the current model, under ids of its own that
// stay valid across a restart. A page that keeps its images itself (the sortwise page:
// project.js) passes `restore` to `Sortwise.create` instead, and no journal is kept.

export class Journal {
  #images = new Map(); // client id -> {label, embedding, workerId, thumbnail, pixels}
  #toClient = new Map(); // worker id -> client id
  #nextId = 1;
  /** The model the worker holds (a `.sortwise`), replayed after a restart. */
  model = null;

  /**
   * A new image the worker added as `workerId`; its client id. The thumbnail is kept only where a
   * replay may need to re-embed it (`finetune`); `pixels`: it came from pixels, not an embedding.
   */
  remember(label, embedding, workerId, thumbnail, pixels, finetune) {
    const id = this.#nextId++;
    const keep = finetune && thumbnail ? thumbnail : null;
    this.#images.set(id, { label: label.trim(), embedding, workerId, thumbnail: keep, pixels });
    this.#toClient.set(workerId, id);
    return id;
  }

  has(id) { return this.#images.has(id); }

  workerId(id) {
    const img = this.#images.get(id);
    if (!img) throw new Error(`there is no image with id ${id}`);
    return img.workerId;
  }

  /** The client id of a worker id (itself when unknown). */
  mine(workerId) { return this.#toClient.get(workerId) ?? workerId; }

  forget(id) {
    const img = this.#images.get(id);
    if (!img) return;
    this.#images.delete(id);
    this.#toClient.delete(img.workerId);
  }

  rename(from, to) {
    for (const img of this.#images.values()) if (img.label === from.trim()) img.label = to.trim();
  }

  dropClass(label) {
    for (const [id, img] of this.#images) if (img.label === label.trim()) this.forget(id);
  }

  /**
   * Loads every image and the model into a fresh worker through `post(op, args)`; images that had
   * pixels are re-embedded from their thumbnails when `finetune` (fine-tuning needs their stage
   * input, which an embedding cannot give back). `onProgress(done, total)` per image.
   */
  async replay(post, { finetune, onProgress }) {
    this.#toClient.clear();
    const total = this.#images.size;
    let done = 0;
    for (const [clientId, img] of this.#images) {
      if (finetune && img.pixels && img.thumbnail) {
        const r = await post('addImage', [img.label, img.thumbnail.slice()]);
        img.workerId = r.id;
        img.embedding = r.embedding;
      } else {
        img.workerId = await post('addEmbedding', [img.label, img.embedding]);
      }
      this.#toClient.set(img.workerId, clientId);
      done += 1;
      onProgress?.(done, total);
    }
    if (this.model) await post('importModel', [this.model]);
  }
}
