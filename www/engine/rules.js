// Generated from the engine's rules() (src/session/mod.rs) by
// `SORTWISE_BLESS=1 cargo test --lib rules_js`; the test fails when they differ.
export const RULES = {
  "maxLabelChars": 100,
  "maxAugment": 16,
  "defaultAugment": 0,
  "finetuneAugment": 2,
  "unsureLabel": "unsure",
  "train": {
    "epochs": 100,
    "optimizer": "adam",
    "lr": null,
    "momentum": 0.9,
    "batchSize": 32,
    "weightDecay": 0.01,
    "labelSmoothing": 0.1,
    "valSplit": 0.2,
    "balance": "auto",
    "seed": 0,
    "patience": 20,
    "stepSize": 0,
    "gamma": 0.1,
    "finetuneLast": false,
    "l2sp": 0.1,
    "finetuneEpochs": 10,
    "finetuneLr": null,
    "refit": true
  },
  "heatmapColors": [
    [
      48,
      18,
      59
    ],
    [
      65,
      125,
      243
    ],
    [
      34,
      220,
      186
    ],
    [
      164,
      252,
      60
    ],
    [
      250,
      156,
      35
    ],
    [
      122,
      4,
      3
    ]
  ],
  "settings": [
    {
      "key": "epochs",
      "type": "int",
      "min": 1,
      "max": 10000,
      "optional": false
    },
    {
      "key": "optimizer",
      "type": "choice",
      "choices": [
        "sgd",
        "adam"
      ],
      "optional": false
    },
    {
      "key": "lr",
      "type": "number",
      "min": 1e-7,
      "max": 10.0,
      "optional": true
    },
    {
      "key": "momentum",
      "type": "number",
      "min": 0.0,
      "max": 0.999,
      "optional": false
    },
    {
      "key": "batchSize",
      "type": "int",
      "min": 1,
      "max": 4096,
      "optional": false
    },
    {
      "key": "weightDecay",
      "type": "number",
      "min": 0.0,
      "max": 1.0,
      "optional": false
    },
    {
      "key": "labelSmoothing",
      "type": "number",
      "min": 0.0,
      "max": 0.9,
      "optional": false
    },
    {
      "key": "valSplit",
      "type": "number",
      "min": 0.0,
      "max": 0.9,
      "optional": false
    },
    {
      "key": "balance",
      "type": "choice",
      "choices": [
        "auto",
        "none",
        "weight",
        "sample"
      ],
      "optional": false
    },
    {
      "key": "seed",
      "type": "int",
      "min": 0,
      "max": 4294967295,
      "optional": false
    },
    {
      "key": "patience",
      "type": "int",
      "min": 0,
      "max": 10000,
      "optional": false
    },
    {
      "key": "stepSize",
      "type": "int",
      "min": 0,
      "max": 10000,
      "optional": false
    },
    {
      "key": "gamma",
      "type": "number",
      "min": 0.0,
      "max": 1.0,
      "optional": false
    },
    {
      "key": "finetuneLast",
      "type": "bool",
      "optional": false
    },
    {
      "key": "l2sp",
      "type": "number",
      "min": 0.0,
      "max": 10000.0,
      "optional": false
    },
    {
      "key": "finetuneEpochs",
      "type": "int",
      "min": 1,
      "max": 1000,
      "optional": false
    },
    {
      "key": "finetuneLr",
      "type": "number",
      "min": 1e-7,
      "max": 10.0,
      "optional": true
    },
    {
      "key": "refit",
      "type": "bool",
      "optional": false
    },
    {
      "key": "augment",
      "type": "int",
      "min": 0,
      "max": 16,
      "optional": false
    },
    {
      "key": "threshold",
      "type": "number",
      "min": 0.0,
      "max": 1.0,
      "optional": false
    }
  ]
};
