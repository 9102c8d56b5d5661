// "Send predictions to a device" in the Test step (also in the classify view a link opens): the
// user picks a USB serial port or a micro:bit over Bluetooth, and each new class the Test step
// shows goes to it as a line (www/device-out.js). Nothing is sent before that click, and only to
// the device the browser's own chooser returned.

import { t } from '../i18n.js';
import { deviceApis, openMicrobitBluetooth, openSerial, PredictionSender } from '../device-out.js';
import { $ } from './dom.js';

let sender = null;
let problem = null; // {key, error}: why the last connection failed or ended

function render() {
  const apis = deviceApis();
  $('device-usb').disabled = !apis.serial || Boolean(sender);
  $('device-ble').disabled = !apis.bluetooth || Boolean(sender);
  $('device-stop').hidden = !sender;
  let text = '';
  if (sender) text = t('deviceSending', { name: sender.name });
  else if (problem) text = t(problem.key, { error: problem.error });
  else if (!apis.serial && !apis.bluetooth) text = t('deviceNoApi');
  $('device-status').textContent = text;
}

async function connect(open) {
  let transport;
  try {
    transport = await open();
  } catch (e) {
    // NotFoundError: the user closed the browser's chooser without picking a device.
    problem = e?.name === 'NotFoundError' ? null : { key: 'deviceFailed', error: e?.message || String(e) };
    render();
    return;
  }
  problem = null;
  sender = new PredictionSender(transport, {
    onClosed: (err) => {
      sender = null;
      problem = err ? { key: 'deviceLost', error: err.message || String(err) } : null;
      render();
    },
  });
  render();
}

/** For sortwiseDebug: the device predictions go to, and how many lines it was sent. */
export function deviceOutState() { return sender ? { name: sender.name, sent: sender.sent } : { problem }; }

export function rerenderDeviceOut() { render(); }

export function bindDeviceOut(project) {
  $('device-usb').addEventListener('click', () => connect(openSerial));
  $('device-ble').addEventListener('click', () => connect(openMicrobitBluetooth));
  $('device-stop').addEventListener('click', () => sender?.close());
  project.addEventListener('prediction', (ev) => sender?.send(ev.detail.prediction));
  render();
}
