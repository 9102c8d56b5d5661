// sortwise → micro:bit: a servo on pin P0 turns to one of four bins.
// MakeCode (makecode.microbit.org) → New project → JavaScript, paste this file; add the
// "bluetooth" extension for the Bluetooth half (Project settings: "No Pairing Required"), or
// delete the Bluetooth part (the last five lines) to use USB only. The page sends a line "class,percent" each time
// the class it shows changes ("Send predictions to a device" in sortwise's Test step).
const BINS = ["recyclable", "hazardous", "kitchen", "other"]
const ANGLES = [0, 60, 120, 180]
// Below this confidence the servo stays where it is (the page sends "unsure,NN" under its threshold).
const MIN_PERCENT = 70

function handle(line: string) {
    // A class name may hold a comma: the percent is after the last one.
    let comma = -1
    for (let i = 0; i < line.length; i++) {
        if (line.charAt(i) == ",") comma = i
    }
    if (comma < 0) return
    const label = line.substr(0, comma)
    const percent = parseInt(line.substr(comma + 1, line.length - comma - 1))
    const bin = BINS.indexOf(label)
    if (bin < 0 || percent < MIN_PERCENT) {
        basic.showIcon(IconNames.Confused)
        return
    }
    pins.servoWritePin(AnalogPin.P0, ANGLES[bin])
    basic.showNumber(bin + 1)
}

// USB: the page opens the micro:bit's serial port at 115200 baud.
serial.setBaudRate(BaudRate.BaudRate115200)
serial.onDataReceived(serial.delimiters(Delimiters.NewLine), function () {
    handle(serial.readUntil(serial.delimiters(Delimiters.NewLine)))
})

// Bluetooth: the page writes to the micro:bit's UART service.
bluetooth.startUartService()
bluetooth.onUartDataReceived(serial.delimiters(Delimiters.NewLine), function () {
    handle(bluetooth.uartReadUntil(serial.delimiters(Delimiters.NewLine)))
})
