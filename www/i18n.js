// Every UI string, in English and Simplified Chinese. `t(key, params)` looks a string up in the
// current language ({name} placeholders are replaced, as text); elements with data-i18n="key" get
// their textContent set, data-i18n-aria / data-i18n-title / data-i18n-placeholder set attributes.

const STRINGS = {
  en: {
    tagline: 'Train an image classifier in this tab, on your own photos.',
    backbone: 'Backbone',
    language: 'Language',
    footer: 'Nothing you add leaves this device.',
    deviceStarting: 'starting…',
    deviceWebgpu: 'WebGPU',
    deviceCpu: 'CPU (wasm)',
    deviceLabel: 'Runs on',
    loadingWeights: 'Downloading the {arch} weights: {loaded} of {total} MB',
    loadingEngine: 'Starting the engine…',
    engineReady: 'Ready: {arch} on {backend}.',
    engineFailed: 'The engine could not start',
    noManifest: 'No backbone weights on this server ({reason}). Run ./run serve.',
    backendChanged: 'Switched to {backend}: {reason}',

    stepData: '1. Classes and images',
    stepTrain: '2. Train',
    stepResults: '3. Results',
    stepTest: '4. Test',
    stepSave: '5. Save and share',

    preset: 'Start from',
    presetGarbage: 'Garbage sorting (4 bins)',
    presetTrashnet: 'TrashNet materials (6)',
    presetEmpty: 'Empty',
    applyPreset: 'Apply',
    presetConfirm: 'Replace all classes and images with this preset?',
    newClass: 'New class name',
    addClass: 'Add class',
    addZip: 'Add a .zip (one folder per class)',
    addFolder: 'Add a folder of class folders',
    dropHint: 'Drop images on a class card, or drop a .zip or a folder of class folders anywhere. Paste (Ctrl+V) adds to the highlighted class.',
    noClasses: 'No classes yet: pick a preset or add a class.',
    images: '{n} images',
    image1: '1 image',
    rename: 'Rename',
    renameTo: 'New name for “{label}”',
    deleteClass: 'Delete',
    deleteClassConfirm: 'Delete the class “{label}” and its {n} images?',
    addFiles: 'Add photos',
    webcam: 'Webcam',
    removeImage: 'Remove this image',
    selectClass: 'Paste target',
    emptyClass: 'No images yet — drop photos here.',
    errEmptyLabel: 'A class name cannot be empty.',
    errDuplicateLabel: 'There is already a class called “{label}”.',
    errTooManyClasses: 'At most {n} classes.',
    errLabelLong: 'A class name can have at most {n} characters.',
    embedding: 'Embedding {done}/{total}',
    reembedding: 'Re-embedding for {arch}: {done}/{total}',
    skippedTitle: 'Skipped files',
    skippedClear: 'Clear list',
    skipNotImage: 'not an image file',
    skipTooBig: 'file larger than {n} MB',
    skipEmpty: 'empty file (0 bytes)',
    skipNoClass: 'not inside a class folder',
    skipZip: 'archive refused',
    skipTooMany: 'image limit reached ({n} images)',
    zipTooManyEntries: 'more than {n} entries',
    zipTooLarge: 'more than {n} MB uncompressed',
    zipUnsafe: 'unsafe path',
    zipBroken: 'not a readable zip file',
    pasteNoTarget: 'Add a class first, then paste.',
    addFailed: 'Adding images failed',

    camTitle: 'Webcam → {label}',
    camSwitch: 'Switch camera',
    camHold: 'Hold to record',
    camClose: 'Close camera',
    camShot: '{n} frames added',
    camError: 'The camera is not available',

    train: 'Train',
    cancel: 'Cancel',
    advanced: 'Advanced settings',
    epochs: 'Epochs',
    lr: 'Learning rate',
    optimizer: 'Optimizer',
    valSplit: 'Validation split',
    balance: 'Class balance',
    balanceAuto: 'automatic',
    balanceNone: 'none',
    balanceWeight: 'weighted loss',
    balanceSample: 'balanced sampling',
    seed: 'Seed',
    patience: 'Early-stop patience (epochs)',
    labelSmoothing: 'Label smoothing',
    augment: 'Augmented views per image (applies to new images)',
    finetuneLast: 'Fine-tune the last backbone stage',
    finetuneHint: 'Fine-tuning also trains the backbone’s last stage, held near its ImageNet weights (L2-SP). It can help when your classes look unlike everyday photos (drawings, X-rays, microscope images); on ordinary photos it changed little in our tests. Training is many times slower, and each image keeps 0.1–0.8 MB more memory per view (2–8 KB without), so switching it on re-adds every image from its thumbnail.',
    finetunePreparing: 'Preparing images for fine-tuning: {done}/{total}',
    finetuneSwitching: 'Switching fine-tuning…',
    finetuneOn: 'Fine-tuning is on: training will also tune the last stage.',
    finetuneOff: 'Fine-tuning is off: training trains the head only.',
    l2sp: 'L2-SP λ',
    trainNeedClasses: 'Training needs at least two classes with images.',
    trainEmptyClass: 'The class “{label}” has no images: add some or delete the class.',
    trainStarting: 'Preparing…',
    trainEpoch: 'Epoch {epoch}/{epochs} · loss {loss} · val. accuracy {acc}',
    finetuneEpoch: 'Fine-tuning epoch {epoch}/{epochs} · loss {loss} · val. accuracy {acc}',
    trainFeatures: 'Preparing the last stage: {done}/{total} views',
    trainDone: 'Trained in {s} s: validation accuracy {acc}.',
    trainCancelled: 'Training cancelled.',
    trainFailed: 'Training failed',
    trainStale: 'The images changed since training: train again to include them.',
    chartLoss: 'Loss',
    chartAcc: 'Validation accuracy',
    trainLoss: 'train',
    valLoss: 'validation',

    valAccuracy: 'Validation accuracy',
    resultsEmpty: 'Train a model to see how well it does on images it has not seen.',
    resultsMeta: '{train} training / {val} validation images · best epoch {best} of {run} · {s} s',
    noValidation: 'No validation images (each class needs at least two images for a validation split).',
    perClass: 'Per class',
    colClass: 'Class',
    colPrecision: 'Precision',
    colRecall: 'Recall (accuracy)',
    colF1: 'F1',
    colSupport: 'Images',
    confusion: 'Confusion matrix (rows: actual, columns: predicted)',
    confusionHint: 'Click a number off the diagonal to see those mistakes.',
    misTitle: '“{actual}” predicted as “{predicted}”',
    misNone: 'No images to show for this cell.',
    actual: 'actual',
    predicted: 'predicted',

    threshold: 'Confidence threshold',
    testPick: 'Pick or drop a photo',
    testLive: 'Live webcam',
    testStop: 'Stop webcam',
    testNeedModel: 'Train a model or import one first.',
    unsure: 'unsure',
    testFailed: 'Prediction failed',
    testDrop: 'Drop a photo here to test it',

    exportModel: 'Export model (.sortwise)',
    importModel: 'Import model',
    exportProject: 'Export project (.zip)',
    importProject: 'Import project (.zip)',
    newProject: 'New empty project',
    newProjectConfirm: 'Delete all classes, images and the model from this browser?',
    modelImported: 'Model imported: {labels}.',
    modelImportFailed: 'The model could not be imported',
    modelNone: 'No trained model yet.',
    projectImported: 'Project imported: {classes} classes, {images} images.',
    projectImportFailed: 'The project could not be imported (the current project is unchanged)',
    projectExportFailed: 'The project could not be exported',
    savedAt: 'Saved in this browser at {time}.',
    saveFailed: 'The project could not be saved in this browser',
    quota: 'The browser’s storage is full, so the latest changes were not saved. Export the project as a .zip, or remove some images.',
    restored: 'Restored your project: {classes} classes, {images} images.',
    restoreFailed: 'The saved project could not be restored',
    switchArch: 'Switching to {arch}…',
    switchFailed: 'Switching backbone failed',
    modelStaleArch: 'The trained model was for another backbone and was removed: train again.',
    busy: 'Please wait for the current task to finish.',
    close: 'Close',
  },
  'zh-CN': {
    tagline: '在浏览器标签页里，用你自己的照片训练图像分类器。',
    backbone: '骨干网络',
    language: '语言',
    footer: '你添加的任何内容都不会离开这台设备。',
    deviceStarting: '启动中…',
    deviceWebgpu: 'WebGPU',
    deviceCpu: 'CPU (wasm)',
    deviceLabel: '运行于',
    loadingWeights: '正在下载 {arch} 权重：{loaded} / {total} MB',
    loadingEngine: '正在启动引擎…',
    engineReady: '就绪：{arch}，运行于 {backend}。',
    engineFailed: '引擎无法启动',
    noManifest: '服务器上没有骨干网络权重（{reason}）。请运行 ./run serve。',
    backendChanged: '已切换到 {backend}：{reason}',

    stepData: '1. 类别与图片',
    stepTrain: '2. 训练',
    stepResults: '3. 结果',
    stepTest: '4. 测试',
    stepSave: '5. 保存与分享',

    preset: '从模板开始',
    presetGarbage: '垃圾分类（4 类）',
    presetTrashnet: 'TrashNet 材质（6 类）',
    presetEmpty: '空白',
    applyPreset: '应用',
    presetConfirm: '用此模板替换所有类别和图片吗？',
    newClass: '新类别名称',
    addClass: '添加类别',
    addZip: '添加 .zip（每个类别一个文件夹）',
    addFolder: '添加包含类别文件夹的文件夹',
    dropHint: '把图片拖到类别卡片上，或把 .zip、包含类别文件夹的文件夹拖到页面任意位置。粘贴（Ctrl+V）会添加到高亮的类别。',
    noClasses: '还没有类别：选择一个模板或添加类别。',
    images: '{n} 张图片',
    image1: '1 张图片',
    rename: '重命名',
    renameTo: '“{label}”的新名称',
    deleteClass: '删除',
    deleteClassConfirm: '删除类别“{label}”及其 {n} 张图片吗？',
    addFiles: '添加照片',
    webcam: '摄像头',
    removeImage: '移除这张图片',
    selectClass: '粘贴目标',
    emptyClass: '还没有图片——把照片拖到这里。',
    errEmptyLabel: '类别名称不能为空。',
    errDuplicateLabel: '已经有名为“{label}”的类别。',
    errTooManyClasses: '最多 {n} 个类别。',
    errLabelLong: '类别名称最多 {n} 个字符。',
    embedding: '正在提取特征 {done}/{total}',
    reembedding: '正在为 {arch} 重新提取特征：{done}/{total}',
    skippedTitle: '已跳过的文件',
    skippedClear: '清空列表',
    skipNotImage: '不是图片文件',
    skipTooBig: '文件大于 {n} MB',
    skipEmpty: '空文件（0 字节）',
    skipNoClass: '不在类别文件夹中',
    skipZip: '压缩包被拒绝',
    skipTooMany: '已达到图片上限（{n} 张）',
    zipTooManyEntries: '条目超过 {n} 个',
    zipTooLarge: '解压后超过 {n} MB',
    zipUnsafe: '不安全的路径',
    zipBroken: '无法读取的 zip 文件',
    pasteNoTarget: '请先添加类别，再粘贴。',
    addFailed: '添加图片失败',

    camTitle: '摄像头 → {label}',
    camSwitch: '切换摄像头',
    camHold: '按住连拍',
    camClose: '关闭摄像头',
    camShot: '已添加 {n} 帧',
    camError: '摄像头不可用',

    train: '训练',
    cancel: '取消',
    advanced: '高级设置',
    epochs: '训练轮数',
    lr: '学习率',
    optimizer: '优化器',
    valSplit: '验证集比例',
    balance: '类别平衡',
    balanceAuto: '自动',
    balanceNone: '无',
    balanceWeight: '加权损失',
    balanceSample: '均衡采样',
    seed: '随机种子',
    patience: '提前停止耐心值（轮）',
    labelSmoothing: '标签平滑',
    augment: '每张图片的增强视图数（对新添加的图片生效）',
    finetuneLast: '微调骨干网络最后一个阶段',
    finetuneHint: '微调会同时训练骨干网络的最后一个阶段，并通过 L2-SP 使其保持接近 ImageNet 预训练权重。当类别与日常照片差别很大时（如手绘图、X 光片、显微图像）可能有帮助；在普通照片上，我们的测试中提升很小。训练会慢很多倍，每张图片的每个视图多占 0.1–0.8 MB 内存（不微调时为 2–8 KB），因此开启时会用缩略图重新添加所有图片。',
    finetunePreparing: '正在为微调准备图片：{done}/{total}',
    finetuneSwitching: '正在切换微调…',
    finetuneOn: '微调已开启：训练时也会调整最后一个阶段。',
    finetuneOff: '微调已关闭：训练只训练分类头。',
    l2sp: 'L2-SP λ',
    trainNeedClasses: '训练至少需要两个有图片的类别。',
    trainEmptyClass: '类别“{label}”没有图片：请添加图片或删除该类别。',
    trainStarting: '准备中…',
    trainEpoch: '第 {epoch}/{epochs} 轮 · 损失 {loss} · 验证准确率 {acc}',
    finetuneEpoch: '微调第 {epoch}/{epochs} 轮 · 损失 {loss} · 验证准确率 {acc}',
    trainFeatures: '正在准备最后一个阶段：{done}/{total} 个视图',
    trainDone: '训练用时 {s} 秒：验证准确率 {acc}。',
    trainCancelled: '训练已取消。',
    trainFailed: '训练失败',
    trainStale: '训练后图片有变动：请重新训练以包含它们。',
    chartLoss: '损失',
    chartAcc: '验证准确率',
    trainLoss: '训练',
    valLoss: '验证',

    valAccuracy: '验证准确率',
    resultsEmpty: '训练模型后，可以看到它在没见过的图片上的表现。',
    resultsMeta: '{train} 张训练 / {val} 张验证图片 · 最佳轮次 {best} / {run} · {s} 秒',
    noValidation: '没有验证图片（每个类别至少需要两张图片才能划分验证集）。',
    perClass: '各类别',
    colClass: '类别',
    colPrecision: '精确率',
    colRecall: '召回率（准确率）',
    colF1: 'F1',
    colSupport: '图片数',
    confusion: '混淆矩阵（行：实际，列：预测）',
    confusionHint: '点击对角线以外的数字查看这些错误。',
    misTitle: '“{actual}”被预测为“{predicted}”',
    misNone: '这个格子没有可显示的图片。',
    actual: '实际',
    predicted: '预测',

    threshold: '置信度阈值',
    testPick: '选择或拖入一张照片',
    testLive: '实时摄像头',
    testStop: '关闭摄像头',
    testNeedModel: '请先训练或导入模型。',
    unsure: '不确定',
    testFailed: '预测失败',
    testDrop: '把照片拖到这里进行测试',

    exportModel: '导出模型（.sortwise）',
    importModel: '导入模型',
    exportProject: '导出项目（.zip）',
    importProject: '导入项目（.zip）',
    newProject: '新建空项目',
    newProjectConfirm: '从此浏览器删除所有类别、图片和模型吗？',
    modelImported: '模型已导入：{labels}。',
    modelImportFailed: '无法导入模型',
    modelNone: '还没有训练好的模型。',
    projectImported: '项目已导入：{classes} 个类别，{images} 张图片。',
    projectImportFailed: '无法导入项目（当前项目未改变）',
    projectExportFailed: '无法导出项目',
    savedAt: '已于 {time} 保存在此浏览器中。',
    saveFailed: '无法在此浏览器中保存项目',
    quota: '浏览器存储空间已满，最新的更改没有保存。请把项目导出为 .zip，或删除一些图片。',
    restored: '已恢复你的项目：{classes} 个类别，{images} 张图片。',
    restoreFailed: '无法恢复已保存的项目',
    switchArch: '正在切换到 {arch}…',
    switchFailed: '切换骨干网络失败',
    modelStaleArch: '已训练的模型属于另一个骨干网络，已被移除：请重新训练。',
    busy: '请等待当前任务完成。',
    close: '关闭',
  },
};

export const LANGS = ['en', 'zh-CN'];
let lang = 'en';
const listeners = [];

// A browser's language tag may be anything its process locale gave it: `C`, `POSIX`,
// `zh_CN.UTF-8`, `und`, '' (WebKitGTK under LANG=C hands the page `C`). Read it leniently,
// never through Intl (which throws on such tags), and fall back to English.
export function langFromTag(tag) {
  if (typeof tag !== 'string') return null;
  const base = tag.trim().split(/[.@]/)[0].replace(/_/g, '-').toLowerCase();
  if (/^zh(-|$)/.test(base)) return 'zh-CN';
  if (/^en(-|$)/.test(base)) return 'en';
  return null;
}

export function defaultLang() {
  let saved = null;
  try { saved = localStorage.getItem('sortwise.lang'); } catch { /* storage disabled */ }
  if (LANGS.includes(saved)) return saved;
  let tags = [];
  try { tags = [...(navigator.languages || []), navigator.language]; } catch { /* as none */ }
  for (const tag of tags) {
    const found = langFromTag(tag);
    if (found) return found;
  }
  return 'en';
}

export function getLang() { return lang; }

export function setLang(next) {
  lang = LANGS.includes(next) ? next : 'en';
  try { localStorage.setItem('sortwise.lang', lang); } catch { /* storage disabled */ }
  document.documentElement.lang = lang;
  applyI18n(document);
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) { listeners.push(fn); }

export function t(key, params = {}) {
  let s = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  for (const [k, v] of Object.entries(params)) s = s.split(`{${k}}`).join(String(v));
  return s;
}

export function applyI18n(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
}

export function formatPct(x) {
  return Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '—';
}
