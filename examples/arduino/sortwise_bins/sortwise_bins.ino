// sortwise → Arduino: a servo on pin 9 turns to one of four bins.
// Arduino IDE: open this sketch, upload, close the Serial Monitor (one program at a time may
// hold the port), then in sortwise's Test step: "Send predictions to a device" → USB. The page
// sends a line "class,percent" at 115200 baud each time the class it shows changes.
// An Uno restarts when the port opens: the line of the class shown at that moment may be lost,
// the next change arrives.
#include <Servo.h>

const char *const BINS[] = {"recyclable", "hazardous", "kitchen", "other"};
const int ANGLES[] = {0, 60, 120, 180};
const int BIN_COUNT = 4;
// Below this confidence the servo stays where it is ("unsure,NN" under the page's threshold).
const int MIN_PERCENT = 70;

Servo servo;

void setup() {
  Serial.begin(115200);
  servo.attach(9);
}

void loop() {
  if (!Serial.available()) return;
  String line = Serial.readStringUntil('\n');
  // A class name may hold a comma: the percent is after the last one.
  int comma = line.lastIndexOf(',');
  if (comma < 0) return;
  String label = line.substring(0, comma);
  int percent = line.substring(comma + 1).toInt();
  if (percent < MIN_PERCENT) return;
  for (int i = 0; i < BIN_COUNT; i++) {
    if (label == BINS[i]) servo.write(ANGLES[i]);
  }
}
