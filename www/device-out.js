// Predictions sent to a device the user picks: a micro:bit or an Arduino over USB (Web Serial),
// or a micro:bit over Bluetooth (its UART service, Web Bluetooth). One text line per change of
// the shown class, `label,percent\n` (e.g. `glass,93`; `unsure,41` under the threshold; a class
// name may hold a comma, so a board splits at the last one), at most
// one line per `minIntervalMs`, so a board's program reads a short, calm stream. No DOM here:
// ui/device-out.js draws the buttons, and the tests fake `navigator.serial` / `navigator.bluetooth`.
//
// Which browsers have them (2026): Web Serial in Chrome, Edge and Opera on computers and in
// Firefox (ESR 153 has it; not on Android, iOS or Safari); Web Bluetooth in Chrome, Edge and
// Opera on computers and in Chrome on Android (not in Firefox, on iOS or in Safari). Both need a secure page (https, localhost)
// and a click: the browser asks the user which device, the page never picks one itself.

/** The micro:bit's UART service and the characteristic a client writes to (micro:bit "RX"). */
export const MICROBIT_UART = '6e400001-b5a3-f393-e0a9-e50e24dcca9e';
export const MICROBIT_UART_RX = '6e400003-b5a3-f393-e0a9-e50e24dcca9e';
/** What one Bluetooth LE write carries without a larger MTU. */
const BLE_CHUNK = 20;
/** The serial speed of the example programs (examples/microbit, examples/arduino). */
export const BAUD_RATE = 115200;

/** Which ways of sending this browser has. */
export function deviceApis(nav = globalThis.navigator) {
  return { serial: Boolean(nav?.serial?.requestPort), bluetooth: Boolean(nav?.bluetooth?.requestDevice) };
}

/** The line sent for prediction `r`: its class (or `unsure`) and its confidence in whole percent. */
export function predictionLine(r) {
  const label = r.unsure ? 'unsure' : r.label;
  const pct = Math.max(0, Math.min(100, Math.round((r.confidence ?? 0) * 100)));
  return `${label},${pct}\n`;
}

/**
 * Sends predictions to `transport` (`{write(text): Promise, close(): Promise}`): the first one,
 * then one line each time the class changes; a change inside `minIntervalMs` of the last line
 * waits for its end, and only the class shown then is sent (none if it is the one already sent).
 * A failed write ends the sender and calls `onClosed(error)`.
 */
export class PredictionSender {
  #transport;
  #minIntervalMs;
  #clock;
  #lastLabel = null; // the class of the last line sent
  #lastAt = -Infinity;
  #pending = null; // the newest prediction not sent yet
  #timer = null;
  #writing = Promise.resolve();
  #closed = false;

  constructor(transport, { minIntervalMs = 250, onClosed = () => {}, clock = { now: () => performance.now(), setTimeout, clearTimeout } } = {}) {
    this.#transport = transport;
    this.#minIntervalMs = minIntervalMs;
    this.onClosed = onClosed;
    this.#clock = clock;
    /** Lines sent, for the status line and the tests. */
    this.sent = 0;
  }

  get name() { return this.#transport.name; }

  send(r) {
    if (this.#closed) return;
    this.#pending = r;
    if (this.#timer !== null) return;
    const wait = this.#lastAt + this.#minIntervalMs - this.#clock.now();
    if (wait > 0) this.#timer = this.#clock.setTimeout(() => { this.#timer = null; this.#flush(); }, wait);
    else this.#flush();
  }

  #flush() {
    const r = this.#pending;
    this.#pending = null;
    if (!r || this.#closed) return;
    const label = r.unsure ? 'unsure' : r.label;
    if (label === this.#lastLabel) return;
    this.#lastLabel = label;
    this.#lastAt = this.#clock.now();
    const line = predictionLine(r);
    this.#writing = this.#writing.then(() => this.#transport.write(line)).then(
      () => { this.sent += 1; },
      (err) => this.#end(err),
    );
  }

  /** Resolves once every line asked for so far is written. */
  drained() { return this.#writing; }

  async #end(err) {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    try { await this.#transport.close(); } catch { /* already gone */ }
    this.onClosed(err ?? null);
  }

  /** Stops sending and lets the device go. */
  close() { return this.#end(null); }
}

/** A USB serial port the user picks (micro:bit, Arduino), opened at `BAUD_RATE`. */
export async function openSerial(nav = globalThis.navigator) {
  const port = await nav.serial.requestPort();
  await port.open({ baudRate: BAUD_RATE });
  const writer = port.writable.getWriter();
  const enc = new TextEncoder();
  return {
    name: 'USB',
    write: (text) => writer.write(enc.encode(text)),
    async close() {
      try { writer.releaseLock(); } finally { await port.close(); }
    },
  };
}

/** A micro:bit the user picks over Bluetooth, through its UART service (written 20 bytes at a time). */
export async function openMicrobitBluetooth(nav = globalThis.navigator) {
  const device = await nav.bluetooth.requestDevice({ filters: [{ namePrefix: 'BBC micro:bit' }], optionalServices: [MICROBIT_UART] });
  const server = await device.gatt.connect();
  const service = await server.getPrimaryService(MICROBIT_UART);
  const rx = await service.getCharacteristic(MICROBIT_UART_RX);
  const enc = new TextEncoder();
  return {
    name: `Bluetooth (${device.name ?? 'micro:bit'})`,
    async write(text) {
      const bytes = enc.encode(text);
      for (let i = 0; i < bytes.length; i += BLE_CHUNK) {
        const chunk = bytes.subarray(i, i + BLE_CHUNK);
        await (rx.writeValueWithResponse ? rx.writeValueWithResponse(chunk) : rx.writeValue(chunk));
      }
    },
    async close() { device.gatt.disconnect(); },
  };
}
