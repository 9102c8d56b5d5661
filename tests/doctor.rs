//! The data checks itself (`sortwise::insight::doctor`) on real photos: trashnet-mini through
//! EfficientNet-Lite0's real weights, with labels flipped and copies injected on purpose.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use common::lite0_pth;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use sortwise::Arch;
use sortwise::formats::weights;
use sortwise::insight::doctor::{self, Options as DoctorOptions};
use sortwise::session::{AddOutcome, Options, Session, SharedSession};
use sortwise::trainer::Progress;

const CLASSES: [&str; 4] = ["glass", "metal", "paper", "plastic"];

fn trashnet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/trashnet-mini")
}

/// (class index, file bytes) of every photo of `split`, in a fixed order.
fn photos(split: &str) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    for (c, class) in CLASSES.iter().enumerate() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(trashnet().join(split).join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        out.extend(files.iter().map(|f| (c, std::fs::read(f).unwrap())));
    }
    out
}

fn lite0() -> sortwise::Backbone {
    weights::load_pth(Arch::EfficientnetLite0, &lite0_pth(), &Device::flex()).unwrap()
}

fn quiet() -> Options {
    Options {
        thumbnails: false,
        ..Options::default()
    }
}

fn encode(img: &image::DynamicImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&img.to_rgb8())
        .unwrap();
    out
}

fn add(s: &SharedSession, class: usize, bytes: Vec<u8>) -> u32 {
    match &pollster::block_on(s.add_images(CLASSES[class], vec![bytes])).unwrap()[0] {
        AddOutcome::Added(id) => *id,
        AddOutcome::Skipped(why) => panic!("{why}"),
    }
}

/// 240 distinct photos, 10 of the 160 training photos filed under a wrong class (seeded), and
/// 17 copies: 5 byte-identical, 5 at twice the size re-encoded, 5 re-encoded at JPEG quality 60,
/// a byte-identical copy of a validation photo, and one filed in another class. Every copy is found (the conflict as a conflict,
/// the copy of a validation photo as a leak), no two distinct photos are called duplicates, and
/// at least 5 of the 10 flipped labels (6 for this seed) are among the 20 likely label errors.
#[test]
fn flipped_labels_and_injected_copies_are_found() {
    let s = SharedSession::new(Session::new(lite0(), "lite0".into(), quiet()).unwrap());
    let train = photos("train");
    let val = photos("val");
    let mut rng = StdRng::seed_from_u64(17);
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut rng);
    let flipped_at: Vec<usize> = order[..10].to_vec();

    // The label check on the 160 training photos with 10 flipped.
    let flips = SharedSession::new(Session::new(lite0(), "lite0".into(), quiet()).unwrap());
    let mut flipped = Vec::new();
    for (i, (c, bytes)) in train.iter().enumerate() {
        let class = if flipped_at.contains(&i) {
            (c + 1 + i % 3) % 4
        } else {
            *c
        };
        let id = add(&flips, class, bytes.clone());
        if class != *c {
            flipped.push(id);
        }
    }
    let none = &mut async |_: &Progress| true;
    let d = pollster::block_on(flips.diagnose(&DoctorOptions::default(), none)).unwrap();
    assert_eq!(d.folds, doctor::FOLDS);
    assert_eq!(d.suspects.len(), doctor::SUSPECTS);
    let found = flipped
        .iter()
        .filter(|id| d.suspects.iter().any(|s| s.id == **id))
        .count();
    eprintln!(
        "{found} of 10 flipped labels among the {} likely label errors",
        d.suspects.len()
    );
    // One seed's flips: at least 5 (flipped_labels_across_seeds holds the mean of 8 to 7).
    assert!(
        found >= 5,
        "{found} of 10 flipped labels in the top 20: {:?}",
        d.suspects
    );
    for s in &d.suspects {
        assert!(s.p_suggested > s.p_label, "{s:?}");
    }
    assert_eq!(d.classes.len(), 4);
    for c in &d.classes {
        assert_eq!(c.boundary.len(), doctor::BOUNDARY);
        assert!(c.recall > 0.3 && c.recall <= 1.0, "{c:?}");
        assert!(
            c.confused_with
                .iter()
                .all(|x| x.label != c.label && x.share > 0.0)
        );
    }
    assert!(!d.balance.imbalanced, "{:?}", d.balance);

    // The duplicate check on all 240 photos, labels as filed, and the copies.
    let ids: Vec<u32> = train.iter().map(|(c, b)| add(&s, *c, b.clone())).collect();
    let val_ids: Vec<u32> = val.iter().map(|(c, b)| add(&s, *c, b.clone())).collect();
    let originals = ids.len() + val_ids.len();

    // Copies of training photos that kept their label (and of the first validation photo).
    let mut copies = Vec::new();
    let keep: Vec<usize> = order[10..].to_vec();
    for (n, &i) in keep.iter().take(15).enumerate() {
        let (c, bytes) = &train[i];
        let img = image::load_from_memory(bytes).unwrap();
        let copy = match n / 5 {
            0 => bytes.clone(),
            1 => encode(
                &img.resize(300, 300, image::imageops::FilterType::Triangle),
                85,
            ),
            _ => encode(&img, 60),
        };
        copies.push((ids[i], add(&s, *c, copy)));
    }
    let (vc, vbytes) = &val[0];
    let leak_copy = add(&s, *vc, vbytes.clone());
    copies.push((val_ids[0], leak_copy));
    // A byte-identical copy filed in another class.
    let (c, bytes) = &train[keep[20]];
    let conflict = add(&s, (c + 2) % 4, bytes.clone());
    copies.push((ids[keep[20]], conflict));

    let none = &mut async |_: &Progress| true;
    let d =
        pollster::block_on(s.diagnose_with_validation(&DoctorOptions::default(), &val_ids, none))
            .unwrap();

    // What the threshold was chosen from: the closest distinct pair and the farthest copy.
    let all = pollster::block_on(s.diagnose_with_validation(
        &DoctorOptions {
            duplicate_similarity: 0.5,
            folds: 0,
            ..DoctorOptions::default()
        },
        &val_ids,
        none,
    ))
    .unwrap();
    let is_copy = |a: u32, b: u32| {
        copies
            .iter()
            .any(|&(x, y)| (x, y) == (a, b) || (y, x) == (a, b))
    };
    let distinct_max = all
        .pairs
        .iter()
        .filter(|p| (p.a as usize) < originals && (p.b as usize) < originals)
        .map(|p| p.similarity)
        .fold(0f32, f32::max);
    let copy_min = all
        .pairs
        .iter()
        .filter(|p| is_copy(p.a, p.b))
        .map(|p| p.similarity)
        .fold(1f32, f32::min);
    eprintln!(
        "closest distinct pair {distinct_max:.4}, farthest copy {copy_min:.4}, threshold {}",
        doctor::DUPLICATE_SIMILARITY
    );
    assert!(
        distinct_max < doctor::DUPLICATE_SIMILARITY && doctor::DUPLICATE_SIMILARITY <= copy_min
    );

    for &(a, b) in &copies {
        let p = d
            .pairs
            .iter()
            .find(|p| (p.a, p.b) == (a.min(b), a.max(b)))
            .unwrap_or_else(|| panic!("copy {a} ~ {b} not found: {:?}", &d.pairs));
        assert_eq!(p.conflict, b == conflict, "{p:?}");
        assert_eq!(p.leak, b == leak_copy, "{p:?}");
    }
    let identical = d.pairs.iter().filter(|p| p.identical).count();
    assert_eq!(
        identical, 7,
        "5 byte copies, the leak and the conflict: {:?}",
        d.pairs
    );
    let false_pairs: Vec<_> = d.pairs.iter().filter(|p| !is_copy(p.a, p.b)).collect();
    assert!(
        false_pairs.is_empty(),
        "distinct photos called duplicates: {false_pairs:?}"
    );
}

/// The same check over 8 seeds of flips, from the photos' embeddings (no second backbone pass):
/// on average at least 7 of the 10 flipped labels are in the top 20, and never fewer than 5
/// (measured: 5, 7, 8, 8, 8, 7, 5, 8).
#[test]
fn flipped_labels_across_seeds() {
    let base = SharedSession::new(Session::new(lite0(), "lite0".into(), quiet()).unwrap());
    let train = photos("train");
    for (c, b) in &train {
        add(&base, *c, b.clone());
    }
    let mut founds = Vec::new();
    for seed in 0..8u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        let s = SharedSession::new(Session::new(lite0(), "lite0".into(), quiet()).unwrap());
        let mut flipped = Vec::new();
        for (i, (c, _)) in train.iter().enumerate() {
            let class = if order[..10].contains(&i) {
                (c + 1 + i % 3) % 4
            } else {
                *c
            };
            let flat = base.get().embedding(i as u32).unwrap().concat();
            let id = s
                .get_mut()
                .add_embedding(CLASSES[class], &flat, None)
                .unwrap();
            if class != *c {
                flipped.push(id);
            }
        }
        let none = &mut async |_: &Progress| true;
        let d = pollster::block_on(s.diagnose(&DoctorOptions::default(), none)).unwrap();
        founds.push(
            flipped
                .iter()
                .filter(|id| d.suspects.iter().any(|s| s.id == **id))
                .count(),
        );
    }
    let mean = founds.iter().sum::<usize>() as f64 / founds.len() as f64;
    eprintln!("flipped labels found per seed: {founds:?}, mean {mean}");
    assert!(mean >= 7.0 && founds.iter().all(|&f| f >= 5), "{founds:?}");
}
