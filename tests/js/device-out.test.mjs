// www/device-out.js without a browser or a board: the line format, the one-line-per-change rule
// and its rate limit (on a fake clock), a failed write, and the two transports against fakes of
// Web Serial and Web Bluetooth shaped as the browsers' objects are.
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  BAUD_RATE, MICROBIT_UART, MICROBIT_UART_RX, PredictionSender, deviceApis, openMicrobitBluetooth, openSerial, predictionLine,
} from '../../www/device-out.js';

const p = (label, confidence, unsure = false) => ({ label: unsure ? 'unsure' : label, confidence, unsure, probs: [] });

function fakeClock() {
  let now = 0;
  const timers = new Map();
  let next = 1;
  return {
    now: () => now,
    setTimeout: (fn, ms) => { const id = next++; timers.set(id, { at: now + ms, fn }); return id; },
    clearTimeout: (id) => timers.delete(id),
    advance(ms) {
      const until = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, x]) => x.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = until;
    },
  };
}

function fakeTransport() {
  const lines = [];
  return { lines, closed: 0, name: 'fake', write: async (text) => { lines.push(text); }, async close() { this.closed += 1; } };
}

test('a line is the class (or unsure) and the whole percent', () => {
  assert.equal(predictionLine(p('glass', 0.934)), 'glass,93\n');
  assert.equal(predictionLine(p('glass', 0.41, true)), 'unsure,41\n');
  assert.equal(predictionLine(p('可回收物', 1)), '可回收物,100\n');
  assert.equal(predictionLine(p('a, b', 0.005)), 'a, b,1\n');
  assert.equal(predictionLine(p('x', 1.2)), 'x,100\n');
});

test('one line per change of class, at most one per interval, the class shown at its end', async () => {
  const clock = fakeClock();
  const tr = fakeTransport();
  const s = new PredictionSender(tr, { minIntervalMs: 250, clock });
  s.send(p('glass', 0.9)); // the first is sent at once
  s.send(p('glass', 0.95)); // same class: nothing
  clock.advance(300);
  s.send(p('glass', 0.97));
  await s.drained();
  assert.deepEqual(tr.lines, ['glass,90\n']);
  s.send(p('metal', 0.8)); // 300 ms after the last line: at once
  clock.advance(100);
  s.send(p('glass', 0.7)); // within 250 ms: waits
  s.send(p('paper', 0.6)); // replaces it: only the newest is sent
  await s.drained();
  assert.deepEqual(tr.lines, ['glass,90\n', 'metal,80\n']);
  clock.advance(149);
  await s.drained();
  assert.equal(tr.lines.length, 2);
  clock.advance(1);
  await s.drained();
  assert.deepEqual(tr.lines, ['glass,90\n', 'metal,80\n', 'paper,60\n']);
  // a change and back inside the interval sends nothing
  s.send(p('metal', 0.9));
  s.send(p('paper', 0.9));
  clock.advance(1000);
  await s.drained();
  assert.equal(tr.lines.length, 3);
  s.send(p('x', 0.5, true));
  await s.drained();
  assert.deepEqual(tr.lines.at(-1), 'unsure,50\n');
  assert.equal(s.sent, 4);
  await s.close();
  s.send(p('glass', 1));
  clock.advance(1000);
  await s.drained();
  assert.equal(tr.lines.length, 4);
  assert.equal(tr.closed, 1);
});

test('a failed write ends the sender, lets the device go and says why', async () => {
  const clock = fakeClock();
  let closedWith;
  const tr = { name: 'f', closed: 0, write: async () => { throw new Error('the device was unplugged'); }, async close() { this.closed += 1; } };
  const s = new PredictionSender(tr, { clock, onClosed: (e) => { closedWith = e; } });
  s.send(p('glass', 1));
  await s.drained();
  assert.equal(closedWith?.message, 'the device was unplugged');
  assert.equal(tr.closed, 1);
  s.send(p('metal', 1));
  await s.drained();
  assert.equal(tr.closed, 1);
});

test('which APIs a browser has', () => {
  assert.deepEqual(deviceApis({}), { serial: false, bluetooth: false });
  assert.deepEqual(deviceApis(undefined), { serial: false, bluetooth: false });
  assert.deepEqual(deviceApis({ serial: { requestPort() {} }, bluetooth: { requestDevice() {} } }), { serial: true, bluetooth: true });
});

test('Web Serial: the picked port opened at 115200 baud, lines written as UTF-8, closed', async () => {
  const written = [];
  let opened = null;
  let closed = false;
  let released = false;
  const port = {
    open: async (o) => { opened = o; },
    writable: { getWriter: () => ({ write: async (b) => { written.push(b); }, releaseLock: () => { released = true; } }) },
    close: async () => { closed = true; },
  };
  const tr = await openSerial({ serial: { requestPort: async () => port } });
  assert.deepEqual(opened, { baudRate: BAUD_RATE });
  await tr.write('glass,93\n');
  assert.equal(new TextDecoder().decode(written[0]), 'glass,93\n');
  await tr.close();
  assert.ok(released && closed);
});

test('Web Bluetooth: a micro:bit by name, its UART service, writes of at most 20 bytes', async () => {
  const writes = [];
  let asked;
  let disconnected = false;
  const rx = { writeValueWithResponse: async (b) => { writes.push(new Uint8Array(b)); } };
  const device = {
    name: 'BBC micro:bit [zigav]',
    gatt: {
      connect: async () => ({ getPrimaryService: async (uuid) => { assert.equal(uuid, MICROBIT_UART); return { getCharacteristic: async (c) => { assert.equal(c, MICROBIT_UART_RX); return rx; } }; } }),
      disconnect: () => { disconnected = true; },
    },
  };
  const tr = await openMicrobitBluetooth({ bluetooth: { requestDevice: async (o) => { asked = o; return device; } } });
  assert.deepEqual(asked, { filters: [{ namePrefix: 'BBC micro:bit' }], optionalServices: [MICROBIT_UART] });
  const line = '可回收物 recyclable things,100\n';
  await tr.write(line);
  assert.ok(writes.length > 1 && writes.every((w) => w.length <= 20));
  const all = new Uint8Array(writes.reduce((n, w) => n + w.length, 0));
  let o = 0;
  for (const w of writes) { all.set(w, o); o += w.length; }
  assert.equal(new TextDecoder().decode(all), line);
  assert.match(tr.name, /micro:bit/);
  await tr.close();
  assert.ok(disconnected);
});
