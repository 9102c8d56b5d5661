// Where the browser benchmarks (browser.mjs, litert.mjs) find what they serve: ONNX Runtime
// Web's build (bench/ort.sh installs it) and each backbone's weights (the real Lite0 the page
// uses, the seeded random ResNets bench/models.sh converts), as paths on scripts/serve.py.

export const ORT_DIST = '/bench/.cache/ort/node_modules/onnxruntime-web/dist/';

export const WEIGHTS = {
  efficientnet_lite0: '/www/weights/efficientnet_lite0.safetensors',
  resnet18: '/bench/.cache/resnet18-random.safetensors',
  resnet50: '/bench/.cache/resnet50-random.safetensors',
};
