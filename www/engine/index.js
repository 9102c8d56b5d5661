// The package's entry (`import { Sortwise, loadClassifier } from 'sortwise'`): the trainable
// client (client.js) and the predict-only classifier built on it (classifier.js).
export * from './client.js';
export { Classifier, DEFAULT_THRESHOLD, loadClassifier, modelArch } from './classifier.js';
