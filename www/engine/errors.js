// The engine's typed failures, apart from the client (client.js) so that the page's project can
// tell them without loading the worker client.

/**
 * A call failed because the engine restarted (its device was lost, or it trapped) after the
 * images and model were loaded back by `restore`. `retry`: the device failed, so the call can be
 * made again as it is (with the ids as they are now); false after a trap, which would repeat.
 */
export class EngineLost extends Error {
  constructor(message, retry) {
    super(message);
    this.name = 'EngineLost';
    this.retry = retry;
  }
}
