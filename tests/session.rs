//! The engine session both shells drive (`sortwise::session`), natively: what the browser's
//! `Trainer` and the CLI do goes through these calls, so the wasm tests only check the binding.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use common::*;
use sortwise::Arch;
use sortwise::backbone::Backbone;
use sortwise::evaluation::calibration;
use sortwise::formats::share::Precision;
use sortwise::formats::weights;
use sortwise::preprocess::{self, Fit};
use sortwise::session::{self, AddOutcome, Options, Session, SharedSession, Split};
use sortwise::trainer::{Progress, TrainConfig};

const PNGS: [&[u8]; 3] = [
    include_bytes!("fixtures/images/glass7_256.png"),
    include_bytes!("fixtures/images/metal15_256.png"),
    include_bytes!("fixtures/images/paper19_256.png"),
];

/// ResNet-18 with the reference's pseudo-random weights: fast, and its embeddings still tell
/// the three fixture photos apart.
fn resnet18() -> Backbone {
    let r: Reference =
        serde_json::from_str(include_str!("fixtures/reference/resnet18.json")).unwrap();
    let bytes = torch_safetensors(
        &r,
        include_bytes!("fixtures/reference/resnet18_bn.safetensors"),
    );
    weights::load_torch_safetensors(Arch::Resnet18, bytes, &Device::flex()).unwrap()
}

/// The source hash the test backbone stands for: a model names its backbone by such a hash
/// (`model_file::check_source_sha256`), so exported models must carry a real-looking one.
const SOURCE_SHA: &str = "7e577e577e577e577e577e577e577e577e577e577e577e577e577e577e577e57";

fn open(options: Options) -> SharedSession {
    SharedSession::new(Session::new(resnet18(), SOURCE_SHA.into(), options).unwrap())
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    pollster::block_on(f)
}

fn ids(outcomes: &[AddOutcome]) -> Vec<u32> {
    outcomes
        .iter()
        .map(|o| match o {
            AddOutcome::Added(id) => *id,
            AddOutcome::Skipped(why) => panic!("skipped: {why}"),
        })
        .collect()
}

/// Two classes of `n` fixture photos each.
fn two_classes(s: &SharedSession, n: usize) -> Vec<u32> {
    let mut all = Vec::new();
    for (i, label) in ["recyclable 可回收物", "other"].iter().enumerate() {
        let files = (0..n).map(|j| PNGS[(i + j) % 3].to_vec()).collect();
        all.extend(ids(&block(s.add_images(label, files)).unwrap()));
    }
    all
}

/// The session's model as its file holds it (metadata, weight, bias): the file's bytes are not
/// comparable (the metadata is a map written in any order).
fn model_of(s: &SharedSession) -> (sortwise::formats::model_file::ModelMeta, Vec<f32>, Vec<f32>) {
    let file = s.get().export_model("x").unwrap();
    let (m, _) = sortwise::formats::model_file::Model::from_bytes_with_stage(&file).unwrap();
    (m.meta, m.weight, m.bias)
}

fn quick() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        val_split: 0.5,
        patience: 0,
        ..TrainConfig::default()
    }
}

/// Counts the progress calls per phase.
fn counting(phases: &mut Vec<String>) -> impl AsyncFnMut(&Progress) -> bool + '_ {
    async move |p: &Progress| {
        assert!(p.loss.is_finite(), "{p:?}");
        phases.push(p.phase.clone());
        true
    }
}

/// One backbone call for photos of several classes (a dropped folder's class ending mid-batch):
/// each photo lands in its own class with its id in the photos' order, embedded as when its
/// class is added alone; a bad file is skipped in place; a bad class name or a count that does
/// not match refuses the whole call and adds nothing.
#[test]
fn one_call_adds_photos_of_several_classes() {
    let labels = ["glass", "glass", "metal", "paper", "glass"];
    let files: Vec<Vec<u8>> = [0, 0, 1, 2, 0].iter().map(|&i| PNGS[i].to_vec()).collect();
    let mixed = open(Options::default());
    let mut with_bad = files.clone();
    with_bad.insert(3, b"not an image".to_vec());
    let mut with_bad_labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    with_bad_labels.insert(3, "metal".into());
    let out = block(mixed.add_images_each(with_bad_labels, with_bad)).unwrap();
    assert!(
        matches!(&out[3], AddOutcome::Skipped(why) if why.contains("image")),
        "{out:?}"
    );
    let got: Vec<u32> = ids(&[&out[..3], &out[4..]].concat());
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "ids in the photos' order: {got:?}"
    );
    assert_eq!(mixed.get().labels(), ["glass", "metal", "paper"]);
    assert_eq!(mixed.get().counts(), vec![3, 1, 1]);
    let class_of = |s: &SharedSession, id: u32| {
        let s = s.get();
        let e = s.examples().iter().find(|e| e.id == id).unwrap();
        s.labels()[e.label].clone()
    };
    for (id, label) in got.iter().zip(labels) {
        assert_eq!(class_of(&mixed, *id), label);
    }

    // The same photos class by class.
    let apart = open(Options::default());
    let mut by_class = Vec::new();
    for class in ["glass", "metal", "paper"] {
        let mine: Vec<Vec<u8>> = labels
            .iter()
            .zip(&files)
            .filter(|(l, _)| **l == class)
            .map(|(_, f)| f.clone())
            .collect();
        by_class.extend(ids(&block(apart.add_images(class, mine)).unwrap()));
    }
    // `by_class` holds the photos glass, glass, glass, metal, paper: their places in `labels`.
    let order = ["glass", "metal", "paper"]
        .iter()
        .flat_map(|c| (0..labels.len()).filter(move |&j| labels[j] == *c));
    for (k, i) in order.enumerate() {
        let d = max_abs_diff(
            &mixed.get().embedding(got[i]).unwrap()[0],
            &apart.get().embedding(by_class[k]).unwrap()[0],
        );
        assert!(d < 1e-4, "photo {i}: {d}");
    }

    // Refused whole: a class name the session refuses, or one class too few.
    let before = mixed.get().counts();
    let err = block(mixed.add_images_each(
        vec!["glass".into(), " ".into()],
        vec![PNGS[0].to_vec(), PNGS[1].to_vec()],
    ))
    .unwrap_err();
    assert!(!err.to_string().is_empty());
    let err = block(mixed.add_images_each(vec!["glass".into()], files[..2].to_vec())).unwrap_err();
    assert!(err.to_string().contains("one each"), "{err}");
    assert_eq!(mixed.get().counts(), before);
    assert_eq!(mixed.get().labels(), ["glass", "metal", "paper"]);
}

#[test]
fn photos_train_predict_and_survive_export() {
    let s = open(Options::default());
    let first = two_classes(&s, 4);
    assert_eq!(s.get().labels(), ["recyclable 可回收物", "other"]);
    assert_eq!(s.get().counts(), vec![4, 4]);

    // One entry per file in order; the bad one is skipped with a reason, the others added; a
    // photo embeds as it does alone, to 1e-4 (batched convolutions sum in another order).
    let out = block(s.add_images(
        "other",
        vec![PNGS[0].to_vec(), b"not an image".to_vec(), PNGS[1].to_vec()],
    ))
    .unwrap();
    assert_eq!(out.len(), 3);
    let AddOutcome::Skipped(why) = &out[1] else {
        panic!("{out:?}")
    };
    assert!(why.contains("image"), "{why}");
    let (AddOutcome::Added(a), AddOutcome::Added(b)) = (&out[0], &out[2]) else {
        panic!("{out:?}")
    };
    assert_eq!(s.get().counts(), vec![4, 6]);
    let d = max_abs_diff(
        &s.get().embedding(first[0]).unwrap()[0],
        &s.get().embedding(*a).unwrap()[0],
    );
    assert!(d <= 1e-4, "batched vs alone: {d}");
    assert!(
        s.get()
            .thumbnail(*a)
            .is_some_and(|t| t.starts_with(&[0xFF, 0xD8]))
    );
    // Taken, the thumbnail is the caller's: the session keeps no copy, the image stays.
    let taken = s.get_mut().take_thumbnail(*b).expect("a thumbnail to take");
    assert!(taken.starts_with(&[0xFF, 0xD8]));
    assert!(s.get().thumbnail(*b).is_none() && s.get_mut().take_thumbnail(*b).is_none());
    assert!(s.get().embedding(*b).is_some());
    assert!(s.get_mut().remove_image(*a) && s.get_mut().remove_image(*b));
    assert!(!s.get_mut().remove_image(*a));
    assert!(s.get().thumbnail(*a).is_none());

    // Past 16 MP of decoded pixels the pending photos go through the backbone before more are
    // decoded: a 16.4 MP photo then a small one still come back as two ids, in order.
    let mut big = Vec::new();
    image::RgbImage::from_pixel(4100, 4000, image::Rgb([90, 140, 60]))
        .write_to(&mut std::io::Cursor::new(&mut big), image::ImageFormat::Png)
        .unwrap();
    let two = ids(&block(s.add_images("other", vec![big, PNGS[2].to_vec()])).unwrap());
    assert!(two.len() == 2 && two[0] < two[1], "{two:?}");
    for id in two {
        s.get_mut().remove_image(id);
    }
    assert_eq!(s.get().counts(), vec![4, 4]);

    // The held-out epochs, then (refit is the default) the refit's.
    let mut phases = Vec::new();
    let report = block(s.train(quick(), &Split::Stratified, &mut counting(&mut phases))).unwrap();
    assert_eq!(phases.iter().filter(|p| *p == "train").count(), 3);
    assert!(report.refit);
    assert_eq!(report.refit_epochs, Some(report.best_epoch));
    assert_eq!(
        phases.iter().filter(|p| *p == "refit").count(),
        report.best_epoch
    );
    assert_eq!((report.train_size, report.val_size), (4, 4));
    assert_eq!(report.confusion.len(), 2);

    let img = preprocess::decode(PNGS[0]).unwrap();
    let p = block(s.predict(&img, 0.0)).unwrap();
    assert!(s.get().labels().contains(&p.label), "{p:?}");
    assert_eq!(p.probs.len(), 2);
    let sum: f32 = p.probs.iter().map(|l| l.p).sum();
    assert!((sum - 1.0).abs() < 1e-5, "{sum}");
    let unsure = block(s.predict(&img, 1.01)).unwrap();
    assert!(unsure.unsure && unsure.label == session::rules().unsure_label);

    // Export, import into a new session: same classes and prediction.
    let file = s.get().export_model("test").unwrap();
    let t = open(Options::default());
    assert_eq!(t.get_mut().import_model(&file).unwrap(), s.get().labels());
    assert_eq!(t.get().labels(), s.get().labels());
    let q = block(t.predict(&img, 0.0)).unwrap();
    assert_eq!(q.label, p.label);
    assert!((q.confidence - p.confidence).abs() < 1e-6);

    // Renaming a class renames the model's label; predictions follow.
    s.get_mut().rename_class("other", "  rest ").unwrap();
    assert_eq!(s.get().trained().unwrap().labels[1], "rest");
    let renamed = block(s.predict(&img, 0.0)).unwrap();
    assert!(renamed.probs.iter().any(|l| l.label == "rest"));
    assert_eq!(s.get_mut().remove_class("rest").unwrap(), 4);
    assert_eq!(s.get().labels(), ["recyclable 可回收物"]);
}

#[test]
fn a_restored_session_trains_the_same_model() {
    // What the page saves (each photo's embedding views and thumbnail) restores into a new
    // session record by record, and the same config then trains the same head.
    let s = open(Options {
        augment: 1,
        ..Options::default()
    });
    let added = two_classes(&s, 3);
    let r = open(Options {
        augment: 1,
        ..Options::default()
    });
    for (id, label) in added.iter().zip([0, 0, 0, 1, 1, 1]) {
        let src = s.get();
        let flat = src.embedding(*id).unwrap().concat();
        assert_eq!(
            flat.len(),
            2 * 512,
            "evaluation view and one augmented view"
        );
        let thumb = src.thumbnail(*id).map(<[u8]>::to_vec);
        let name = src.labels()[label].clone();
        drop(src);
        let new = r.get_mut().add_embedding(&name, &flat, thumb).unwrap();
        assert_eq!(new, *id, "ids are given in the same order");
        assert_eq!(r.get().embedding(new), s.get().embedding(*id));
        assert_eq!(r.get().thumbnail(new), s.get().thumbnail(*id));
    }
    assert_eq!(r.get().labels(), s.get().labels());
    let none = &mut async |_: &Progress| true;
    let a = block(s.train(quick(), &Split::Stratified, none)).unwrap();
    let b = block(r.train(quick(), &Split::Stratified, none)).unwrap();
    assert_eq!(a.history, b.history);
    assert_eq!(a.confusion, b.confusion);
    let (mut a, mut b) = (model_of(&s), model_of(&r));
    // The report's timing is the one thing that may differ.
    for m in [&mut a, &mut b] {
        m.0.report.as_mut().unwrap().seconds = 0.0;
    }
    assert_eq!(a, b);

    // Embeddings that do not fit this backbone are refused and add nothing.
    let err = r
        .get_mut()
        .add_embedding("other", &[0.5; 100], None)
        .unwrap_err();
    assert!(err.to_string().contains("multiple of 512"), "{err}");
    let err = r
        .get_mut()
        .add_embedding("other", &[f32::NAN; 512], None)
        .unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
    assert_eq!(r.get().counts(), vec![3, 3]);
}

#[test]
fn refusals_leave_the_session_as_it_was() {
    let s = open(Options::default());
    two_classes(&s, 2);
    let none = &mut async |_: &Progress| true;
    block(s.train(quick(), &Split::Stratified, none)).unwrap();
    let before = model_of(&s);

    // A model made on other weights of the same architecture is refused.
    let other = SharedSession::new(
        Session::new(
            resnet18(),
            "07e407e407e407e407e407e407e407e407e407e407e407e407e407e407e407e4".into(),
            Options::default(),
        )
        .unwrap(),
    );
    two_classes(&other, 2);
    block(other.train(quick(), &Split::Stratified, none)).unwrap();
    let foreign = other.get().export_model("x").unwrap();
    let err = s.get_mut().import_model(&foreign).unwrap_err();
    assert!(err.to_string().contains("other resnet18 weights"), "{err}");
    let err = s
        .get_mut()
        .import_model(&foreign[..foreign.len() / 2])
        .unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_eq!(model_of(&s), before);

    // A cancelled run keeps the previous model.
    let cancel = &mut async |_: &Progress| false;
    let err = block(s.train(quick(), &Split::Stratified, cancel)).unwrap_err();
    assert!(matches!(err, sortwise::Error::Cancelled), "{err}");
    assert_eq!(model_of(&s), before);

    // Fine-tuning needs the stage inputs this session does not keep.
    let cfg = TrainConfig {
        finetune_last: true,
        ..quick()
    };
    let err = block(s.train(cfg, &Split::Stratified, none)).unwrap_err();
    assert!(err.to_string().contains("finetune: true"), "{err}");

    // Bad class names and files: nothing added.
    let err = block(s.add_images(" ", vec![PNGS[0].to_vec()])).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let long = "x".repeat(session::rules().max_label_chars + 1);
    assert!(block(s.add_images(&long, vec![PNGS[0].to_vec()])).is_err());
    assert_eq!(s.get().counts(), vec![2, 2]);
    assert!(
        Session::new(
            resnet18(),
            String::new(),
            Options {
                augment: session::MAX_AUGMENT + 1,
                ..Options::default()
            }
        )
        .is_err()
    );
}

#[test]
fn a_finetuned_stage_is_trained_exported_and_predicted_through() {
    let s = open(Options {
        finetune: true,
        ..Options::default()
    });
    two_classes(&s, 3);
    let cfg = TrainConfig {
        finetune_last: true,
        finetune_epochs: 2,
        ..quick()
    };
    let mut phases = Vec::new();
    let report = block(s.train(cfg, &Split::Stratified, &mut counting(&mut phases))).unwrap();
    let ft = report.finetune.expect("fine-tuning stats");
    assert!(phases.iter().any(|p| p == "finetune"), "{phases:?}");
    assert_eq!(ft.epochs_run, 2);
    assert!(s.get().trained().unwrap().has_stage());

    let img = preprocess::decode(PNGS[1]).unwrap();
    let p = block(s.predict(&img, 0.0)).unwrap();
    let file = s.get().export_model("test").unwrap();
    let t = open(Options::default());
    t.get_mut().import_model(&file).unwrap();
    assert!(t.get().trained().unwrap().has_stage());
    let q = block(t.predict(&img, 0.0)).unwrap();
    for (a, b) in p.probs.iter().zip(&q.probs) {
        assert_eq!(a.label, b.label);
        assert!((a.p - b.p).abs() < 1e-5, "{p:?} vs {q:?}");
    }

    // A photo added by embedding has no stage input: fine-tuning refuses, saying why.
    let flat = s.get().embedding(0).unwrap().concat();
    s.get_mut().add_embedding("other", &flat, None).unwrap();
    let err =
        block(s.train(cfg_ft(), &Split::Stratified, &mut async |_: &Progress| true)).unwrap_err();
    assert!(err.to_string().contains("1 of the 7 images"), "{err}");
}

fn cfg_ft() -> TrainConfig {
    TrainConfig {
        finetune_last: true,
        ..quick()
    }
}

fn trashnet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/trashnet-mini")
}

fn photos(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Real photos: chance is 25%, the floor 70% (tests/training.rs measures the same recipe at
/// 80%). The temperature fitted on the run's own validation split makes confidences no worse
/// calibrated on photos the run never saw (the val folder), and a held-out folder given as the
/// validation set (as the CLI's `--val`) is the one validated on.
#[test]
fn trashnet_mini_through_the_session_calibrated_and_with_a_held_out_folder() {
    let backbone =
        weights::load_pth(Arch::EfficientnetLite0, &lite0_pth(), &Device::flex()).unwrap();
    let s = SharedSession::new(
        Session::new(
            backbone,
            weights::sha256_hex(&std::fs::read(lite0_pth()).unwrap()),
            Options {
                thumbnails: false,
                ..Options::default()
            },
        )
        .unwrap(),
    );
    let classes = ["glass", "metal", "paper", "plastic"];
    for c in classes {
        let out = block(s.add_images(c, photos(&trashnet().join("train").join(c)))).unwrap();
        assert!(out.iter().all(|o| matches!(o, AddOutcome::Added(_))));
        assert!(
            s.get().thumbnail(ids(&out)[0]).is_none(),
            "thumbnails: false"
        );
    }
    let none = &mut async |_: &Progress| true;
    let report = block(s.train(TrainConfig::default(), &Split::Stratified, none)).unwrap();
    let cal = report
        .calibration
        .clone()
        .expect("a validation split, so a temperature");
    assert!(cal.temperature > 0.0 && cal.temperature != 1.0, "{cal:?}");
    assert_eq!(s.get().trained().unwrap().temperature, cal.temperature);

    // The val folder, never seen: accuracy, and ECE with the fitted temperature against without.
    let mut inputs = Vec::new();
    let mut truth = Vec::new();
    let mut unseen = Vec::new();
    for (label, c) in classes.iter().enumerate() {
        for bytes in photos(&trashnet().join("val").join(c)) {
            let img = preprocess::decode(&bytes).unwrap();
            inputs.push(preprocess::eval_tensor(&img, Fit::Crop));
            truth.push(label);
            unseen.push((c, img));
        }
    }
    let (logits, labels, t) = block(s.logits(&inputs)).unwrap();
    assert_eq!(labels, classes);
    let raw = calibration::softmax(&logits, 1.0);
    let calibrated = calibration::softmax(&logits, t);
    let m = sortwise::evaluation::metrics::compute(&calibrated, &truth, 4);
    assert!(m.accuracy >= 0.70, "unseen accuracy {}", m.accuracy);
    let (before, after) = (
        calibration::ece(&raw, &truth),
        calibration::ece(&calibrated, &truth),
    );
    assert!(after <= before, "ECE {before} -> {after} at T = {t}");
    // What predict and the CLI's eval use is the calibrated one.
    let (p, _) = block(s.probabilities(&inputs[..1])).unwrap();
    assert!(max_abs_diff(&p[0], &calibrated[0]) < 1e-6);

    // Shared by link: int8 agrees with the full head on the validation photos, and the model
    // read back gives the same class on the never-seen folder.
    let shared = s.get().share().unwrap();
    eprintln!(
        "shared: {:?}, agreement {} on {} photos, {} bytes",
        shared.precision,
        shared.agreement,
        shared.n,
        shared.bytes.len()
    );
    assert!(
        shared.agreement >= sortwise::formats::share::MIN_AGREEMENT,
        "{shared:?}"
    );
    let linked = sortwise::formats::share::decode(&shared.bytes).unwrap();
    let l = SharedSession::new(
        Session::new(
            weights::load_pth(Arch::EfficientnetLite0, &lite0_pth(), &Device::flex()).unwrap(),
            weights::sha256_hex(&std::fs::read(lite0_pth()).unwrap()),
            Options::default(),
        )
        .unwrap(),
    );
    l.get_mut().set_model(linked, None).unwrap();
    let (linked_logits, _, _) = block(l.logits(&inputs)).unwrap();
    let same = logits
        .iter()
        .zip(&linked_logits)
        .filter(|(a, b)| {
            sortwise::evaluation::metrics::argmax(a) == sortwise::evaluation::metrics::argmax(b)
        })
        .count();
    assert!(
        same as f64 >= 0.99 * inputs.len() as f64,
        "{same} of {}",
        inputs.len()
    );

    // The same folder as the validation set: validated on, and refit on.
    let mut held = Vec::new();
    for (c, img) in unseen {
        held.extend(block(s.add_decoded(c, vec![img], Some(0))).unwrap());
    }
    let n_train: usize = s.get().counts().iter().sum::<usize>() - held.len();
    let report = block(s.train(TrainConfig::default(), &Split::Held(held.clone()), none)).unwrap();
    assert_eq!((report.train_size, report.val_size), (n_train, held.len()));
    assert!(report.misclassified.iter().all(|m| held.contains(&m.id)));
    assert!(
        report.val_accuracy.unwrap() >= 0.70,
        "{:?}",
        report.val_accuracy
    );
    assert_eq!(report.refit_size, Some(n_train + held.len()));
    assert_eq!(report.calibration.unwrap().n, held.len());

    // An id that is not there is refused before anything runs.
    let err = block(s.train(TrainConfig::default(), &Split::Held(vec![9999]), none)).unwrap_err();
    assert!(err.to_string().contains("9999"), "{err}");
}

/// The class activation maps add up to the logits of the ordinary forward pass (mean over
/// positions plus the bias), with and without a fine-tuned stage, and the explanation's
/// prediction is `predict`'s.
#[test]
fn heatmaps_are_exact() {
    for finetune in [false, true] {
        let s = open(Options {
            finetune,
            ..Options::default()
        });
        two_classes(&s, 3);
        let cfg = TrainConfig {
            finetune_last: finetune,
            finetune_epochs: 2,
            ..quick()
        };
        block(s.train(cfg, &Split::Stratified, &mut async |_: &Progress| true)).unwrap();
        assert_eq!(s.get().trained().unwrap().has_stage(), finetune);
        for png in PNGS {
            let img = preprocess::decode(png).unwrap();
            let e = block(s.explain(&img, 0.0)).unwrap();
            let h = &e.heatmap;
            assert_eq!((h.width, h.height, h.maps.len()), (7, 7, 2));
            assert!(h.maps.iter().all(|m| m.len() == 49));
            // The fixtures are 256×256: the centre 224 of 256.
            let r = h.region;
            assert!(
                (r[0] - 1.0 / 16.0).abs() < 1e-6 && (r[3] - 15.0 / 16.0).abs() < 1e-6,
                "{r:?}"
            );
            let x = preprocess::eval_tensor(&img, Fit::Crop);
            let (logits, _, _) = block(s.logits(&[x])).unwrap();
            let bias = {
                let file = s.get().export_model("x").unwrap();
                sortwise::formats::model_file::Model::from_bytes_with_stage(&file)
                    .unwrap()
                    .0
                    .bias
            };
            let from_maps = sortwise::insight::explain::logits(&h.maps, &bias);
            let scale = logits[0].iter().fold(1f32, |m, v| m.max(v.abs()));
            let d = max_abs_diff(&from_maps, &logits[0]);
            assert!(
                d <= 1e-4 * scale,
                "finetune {finetune}: maps {from_maps:?} vs {:?}",
                logits[0]
            );
            let p = block(s.predict(&img, 0.0)).unwrap();
            assert_eq!(e.prediction.label, p.label);
            assert!((e.prediction.confidence - p.confidence).abs() < 1e-4);
        }
    }
}

/// A trained model as link bytes: 4-bit or int8 rows agreeing with the full head, decoded into another
/// session that predicts the same; cut, foreign or overlong bytes refused; a fine-tuned stage
/// refused (too large for a link).
#[test]
fn a_model_shared_by_link_predicts_the_same() {
    let s = open(Options::default());
    two_classes(&s, 3);
    block(s.train(quick(), &Split::Stratified, &mut async |_: &Progress| true)).unwrap();
    let shared = s.get().share().unwrap();
    assert!(
        shared.agreement >= sortwise::formats::share::MIN_AGREEMENT && shared.n > 0,
        "{shared:?}"
    );
    // Header, two labels, two biases, two rows of the weights at the precision chosen: 8 f16
    // scales and 256 bytes of 4-bit pairs, or a scale and 512 int8 weights (never f16 here).
    let row = match shared.precision {
        Precision::Int4 => 8 * 2 + 256,
        Precision::Int8 => 4 + 512,
        Precision::F16 => panic!("{shared:?}"),
    };
    assert!(
        shared.bytes.len() < 2 * row + 120,
        "{} bytes",
        shared.bytes.len()
    );

    let model = sortwise::formats::share::decode(&shared.bytes).unwrap();
    assert_eq!(model.meta.labels, s.get().labels());
    let t = open(Options::default());
    t.get_mut().set_model(model, None).unwrap();
    for png in PNGS {
        let img = preprocess::decode(png).unwrap();
        let (a, b) = (
            block(s.predict(&img, 0.0)).unwrap(),
            block(t.predict(&img, 0.0)).unwrap(),
        );
        assert_eq!(a.probs[0].label, b.probs[0].label);
        assert!((a.confidence - b.confidence).abs() < 0.02, "{a:?} vs {b:?}");
    }

    let bytes = &shared.bytes;
    for bad in [
        &bytes[..bytes.len() - 1],
        &bytes[..10],
        b"SWs2 not a model".as_slice(),
    ] {
        assert!(sortwise::formats::share::decode(bad).is_err());
    }
    let mut long = bytes.clone();
    long.push(0);
    let err = sortwise::formats::share::decode(&long).unwrap_err();
    assert!(err.to_string().contains("past its end"), "{err}");

    let f = open(Options {
        finetune: true,
        ..Options::default()
    });
    two_classes(&f, 3);
    let cfg = TrainConfig {
        finetune_last: true,
        finetune_epochs: 1,
        ..quick()
    };
    block(f.train(cfg, &Split::Stratified, &mut async |_: &Progress| true)).unwrap();
    let err = f.get().share().unwrap_err();
    assert!(err.to_string().contains("too large for a link"), "{err}");
}

#[test]
fn rules_are_the_engines_own() {
    let r = session::rules();
    assert_eq!(r.train, TrainConfig::default());
    assert_eq!(r.max_label_chars, sortwise::data::dataset::MAX_LABEL_CHARS);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["maxLabelChars"], 100);
    assert_eq!(json["train"]["valSplit"], 0.2);
    assert_eq!(json["unsureLabel"], "unsure");
    assert_eq!(json["heatmapColors"].as_array().unwrap().len(), 6);
}

/// The worker's idle warm-up runs the backbone on synthetic photos and leaves the session as it
/// was: the same classes, photos, embeddings, model, and the next photo's id.
#[test]
fn warming_up_changes_nothing() {
    let s = open(Options::default());
    let ids_before = two_classes(&s, 2);
    block(s.train(quick(), &Split::Stratified, &mut async |_: &Progress| true)).unwrap();
    let snapshot = |s: &SharedSession| {
        let g = s.get();
        let rows: Vec<(u32, usize, Vec<Vec<f32>>)> = g
            .examples()
            .iter()
            .map(|e| (e.id, e.label, e.views.clone()))
            .collect();
        (g.labels().to_vec(), g.counts(), rows)
    };
    let before = (snapshot(&s), model_of(&s));
    block(s.warm_up(3)).unwrap();
    assert_eq!((snapshot(&s), model_of(&s)), before);
    let next = ids(&block(s.add_images("other", vec![PNGS[0].to_vec()])).unwrap());
    assert_eq!(next, [ids_before.iter().max().unwrap() + 1]);
}
