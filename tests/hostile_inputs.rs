//! What users drop: odd but valid images decode to the right pixels, hostile ones fail with a
//! message before large allocations, and a seeded mutation fuzzer over the image decoder, the
//! model-file parser, the shared-link decoder and the weight-file reader finds no panic. (Panics abort in wasm, killing
//! the tab's trainer, so "no panic" is the property that matters.)
//!
//! The fuzz pass here is bounded (`SORTWISE_FUZZ_ITERS`, default 300 per seed file) so CI stays
//! fast; longer runs: `SORTWISE_FUZZ_ITERS=20000 cargo test --release --test hostile_inputs`, or
//! by time: `SORTWISE_FUZZ_SECONDS=600` (each fuzz target, see docs/FUZZING.md).
#![cfg(not(target_arch = "wasm32"))]

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::tensor::Device;
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, RgbImage, Rgba};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sortwise::Arch;
use sortwise::backbone::Backbone;
use sortwise::formats::model_file::Model;
use sortwise::formats::share::{self, Precision};
use sortwise::formats::weights;
use sortwise::preprocess::{self, Fit};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/hostile/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// Mean colour of a decoded image, to check the pixels mean what they should.
fn mean(img: &RgbImage) -> [f64; 3] {
    let n = (img.width() * img.height()) as f64;
    let mut s = [0.0; 3];
    for p in img.pixels() {
        for c in 0..3 {
            s[c] += p[c] as f64 / n;
        }
    }
    s
}

#[test]
fn unusual_but_valid_images_decode_as_seen() {
    // 16-bit RGB PNG: a mid-grey stays mid-grey after the reduction to 8 bits.
    let png16 = encode(
        DynamicImage::ImageRgb16(ImageBuffer::from_pixel(20, 10, Rgb([32768u16, 0, 65535]))),
        ImageFormat::Png,
    );
    let img = preprocess::decode(&png16).unwrap();
    assert_eq!(img.dimensions(), (20, 10));
    assert_eq!(img.get_pixel(3, 3).0, [128, 0, 255]);

    // Grayscale, and grayscale with alpha (transparent -> white).
    let gray = encode(
        DynamicImage::ImageLuma8(ImageBuffer::from_pixel(8, 8, Luma([77u8]))),
        ImageFormat::Png,
    );
    assert_eq!(
        preprocess::decode(&gray).unwrap().get_pixel(0, 0).0,
        [77; 3]
    );
    let gray_alpha = encode(
        DynamicImage::ImageLumaA8(ImageBuffer::from_pixel(8, 8, LumaA([0u8, 0]))),
        ImageFormat::Png,
    );
    assert_eq!(
        preprocess::decode(&gray_alpha).unwrap().get_pixel(0, 0).0,
        [255; 3]
    );

    // One pixel still makes a full network input.
    let one = encode(
        DynamicImage::ImageRgba8(ImageBuffer::from_pixel(1, 1, Rgba([10u8, 20, 30, 255]))),
        ImageFormat::Png,
    );
    let x = preprocess::preprocess(&one, Fit::Crop).unwrap();
    assert_eq!(x.len(), 3 * 224 * 224);
    assert!(x.iter().all(|v| v.is_finite()));

    // CMYK JPEG (scanners, print workflows): red background, green box, not inverted colours.
    let cmyk = preprocess::decode(&fixture("cmyk.jpg")).unwrap();
    assert_eq!(cmyk.dimensions(), (48, 32));
    let bg = cmyk.get_pixel(2, 2).0;
    assert!(
        bg[0] > 150 && bg[1] < 90 && bg[2] < 90,
        "CMYK background {bg:?}"
    );
    let inside = cmyk.get_pixel(20, 16).0;
    assert!(inside[1] > 130 && inside[0] < 90, "CMYK box {inside:?}");

    // Animated GIF and WebP: the first frame (red), not the second (blue).
    for name in ["animated.gif", "animated.webp"] {
        let img = preprocess::decode(&fixture(name)).unwrap();
        let m = mean(&img);
        assert!(
            m[0] > 120.0 && m[2] < 90.0,
            "{name}: first frame expected, mean {m:?}"
        );
    }

    // EXIF orientation 6: stored 48x32, shown (and embedded) 32x48.
    assert_eq!(
        preprocess::decode(&fixture("exif_rot6.jpg"))
            .unwrap()
            .dimensions(),
        (32, 48)
    );
    assert_eq!(
        preprocess::decode(&fixture("gray.jpg"))
            .unwrap()
            .dimensions(),
        (48, 32)
    );
}

/// A PNG whose header declares `w`x`h` but whose data is a few bytes: the decoder must refuse
/// it from the header, before allocating the pixels.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut png = encode(
        DynamicImage::ImageRgb8(RgbImage::new(1, 1)),
        ImageFormat::Png,
    );
    // IHDR data starts at byte 16: width, height (big-endian), then the chunk CRC at 29..33.
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn huge_and_bomb_images_are_refused_with_a_reason() {
    let e = preprocess::decode(&png_declaring(20_000, 20_000))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("10000") || e.contains("too large") || e.contains("limit"),
        "{e}"
    );
    let e = preprocess::decode(&png_declaring(1, 0))
        .unwrap_err()
        .to_string();
    assert!(!e.is_empty());

    // A real decompression bomb: 9,000 x 9,000 of zeros is a few hundred KB of PNG but would
    // be 243 MB of RGB pixels. It is within the side limit, so it must decode within the
    // allocation limit or be refused by it — never abort.
    let bomb = {
        let mut out = Vec::new();
        let enc = image::codecs::png::PngEncoder::new(&mut out);
        use image::ImageEncoder;
        let zeros = vec![0u8; 9_000 * 9_000];
        enc.write_image(&zeros, 9_000, 9_000, image::ExtendedColorType::L8)
            .unwrap();
        out
    };
    assert!(bomb.len() < 1_000_000, "bomb is {} bytes", bomb.len());
    match preprocess::decode(&bomb) {
        Ok(img) => assert_eq!(img.dimensions(), (9_000, 9_000)),
        Err(e) => assert!(e.to_string().contains("limit"), "{e}"),
    }

    // Wrong extension does not matter (content sniffing); a zero-byte file says so.
    let png = encode(
        DynamicImage::ImageRgb8(RgbImage::new(4, 4)),
        ImageFormat::Png,
    );
    assert!(preprocess::decode(&png).is_ok());
    assert!(
        preprocess::decode(&[])
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
}

/// Seeded mutations of a valid input: bit flips, byte overwrites with boundary values,
/// truncation, insertion, deletion and chunk duplication.
fn mutate(seed: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        if b.is_empty() {
            b.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..b.len());
        match rng.random_range(0..6) {
            0 => b[at] ^= 1 << rng.random_range(0..8),
            1 => b[at] = [0, 1, 0x7F, 0x80, 0xFF][rng.random_range(0..5)],
            2 => b.truncate(at),
            3 => b.insert(at, rng.random()),
            4 => {
                b.remove(at);
            }
            _ => {
                let end = (at + rng.random_range(1..64)).min(b.len());
                let chunk = b[at..end].to_vec();
                let to = rng.random_range(0..=b.len());
                b.splice(to..to, chunk);
            }
        }
    }
    b
}

fn iterations() -> usize {
    std::env::var("SORTWISE_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

/// The long mode (benchmarks, optional CI): `SORTWISE_FUZZ_SECONDS=N` gives every fuzz target
/// N seconds, shared among its seeds, instead of `iterations()` mutants per seed.
fn seconds() -> Option<f64> {
    std::env::var("SORTWISE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 0.0)
}

/// Runs `f` on mutants of every seed (`iterations()` each, or for `seconds()`); returns
/// (inputs tried, inputs accepted). A panic fails the test with the seed and iteration needed
/// to reproduce it.
fn fuzz(name: &str, seeds: &[Vec<u8>], f: impl Fn(&[u8]) -> bool) -> (usize, usize) {
    let (mut tried, mut ok) = (0, 0);
    let per_seed = seconds().map(|s| s / seeds.len() as f64);
    for (s, seed) in seeds.iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(0x5eed + s as u64);
        let started = std::time::Instant::now();
        let mut i = 0;
        loop {
            let more = match per_seed {
                Some(budget) => started.elapsed().as_secs_f64() < budget,
                None => i < iterations(),
            };
            if !more {
                break;
            }
            let input = mutate(seed, &mut rng);
            tried += 1;
            match catch_unwind(AssertUnwindSafe(|| f(&input))) {
                Ok(accepted) => ok += accepted as usize,
                Err(_) => panic!(
                    "{name}: panic on seed {s} iteration {i} ({} bytes)",
                    input.len()
                ),
            }
            i += 1;
        }
    }
    eprintln!("fuzz {name}: {tried} inputs, {ok} accepted, 0 panics");
    (tried, ok)
}

#[test]
fn fuzzed_images_never_panic() {
    let mut seeds: Vec<Vec<u8>> = ["cmyk.jpg", "animated.gif", "animated.webp", "exif_rot6.jpg"]
        .iter()
        .map(|n| fixture(n))
        .collect();
    let small = DynamicImage::ImageRgba8(ImageBuffer::from_fn(16, 12, |x, y| {
        Rgba([(x * 15) as u8, (y * 20) as u8, 90, 200])
    }));
    for format in [ImageFormat::Png, ImageFormat::Bmp] {
        seeds.push(encode(small.clone(), format));
    }
    let (tried, accepted) = fuzz(
        "decode+preprocess",
        &seeds,
        |bytes| match preprocess::decode(bytes) {
            Ok(img) => {
                let x = preprocess::eval_tensor(&img, Fit::Crop);
                assert_eq!(x.len(), 3 * 224 * 224);
                preprocess::thumbnail_jpeg(&img).is_ok()
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        },
    );
    if seconds().is_none() {
        assert_eq!(tried, seeds.len() * iterations());
    }
    // Some mutants must still decode, or the mutator is only testing the format sniffing.
    assert!(accepted > 0, "no mutant decoded");
}

/// An emoji ZWJ sequence and a subdivision flag (tag characters): labels the rule keeps.
const SCIENTIST: &str = "👩\u{200D}🔬";
const SCOTLAND: &str = "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}";

fn head_model(sha: &str, labels: &[&str]) -> Model {
    Model {
        meta: sortwise::formats::model_file::ModelMeta {
            version: sortwise::formats::model_file::VERSION,
            arch: Arch::EfficientnetLite0,
            backbone_source_sha256: sha.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            fit: Fit::Crop,
            dim: 1280,
            config: Default::default(),
            report: None,
            producer: "fuzz".into(),
            temperature: 1.0,
        },
        weight: vec![0.5; labels.len() * 1280],
        bias: vec![0.0; labels.len()],
    }
}

/// Every backbone check a parsed model can meet: each architecture, and source hashes that are
/// equal, different, empty or non-ASCII (the mismatch message quotes both).
fn check_every_backbone(model: &Model) {
    for arch in Arch::ALL {
        for sha in [
            model.meta.backbone_source_sha256.as_str(),
            "",
            "cd",
            &"ab".repeat(32),
            "é€ü😀 source",
        ] {
            if let Err(e) = model.check_backbone(arch, sha) {
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

#[test]
fn fuzzed_model_and_weight_files_never_panic() {
    // Version 1 (head only) and version 2 (with a small stand-in stage) files, with ASCII and
    // non-ASCII source hashes and labels, so mutations land on multi-byte characters too.
    let stage = sortwise::backbone::StageWeights {
        tensors: vec![
            ("conv_head.bias".into(), vec![2], vec![0.25, -1.0]),
            ("conv_head.weight".into(), vec![2, 1, 1, 1], vec![3.0, 4.0]),
        ],
    };
    let seeds = vec![
        head_model(&"ab".repeat(32), &["可回收物", "other"])
            .to_bytes()
            .unwrap(),
        // Refused for its hash: mutants that reach the labels' rule or the mismatch message
        // with a multi-byte hash.
        head_model("x€€€€€€€€€€€€€", &["glass", "有害垃圾 🔋", "paper"])
            .to_bytes()
            .unwrap(),
        // Joiners and flag tags, which the label rule allows only in place.
        head_model(&"cd".repeat(8), &[SCIENTIST, SCOTLAND, "ملصق עברית"])
            .to_bytes()
            .unwrap(),
        head_model(&"ab".repeat(32), &["glass", "metal"])
            .to_bytes_with_stage(Some(&stage))
            .unwrap(),
    ];
    let (_, accepted) = fuzz("model file (v1, v2, check_backbone)", &seeds, |bytes| {
        // Head-only callers refuse v2 files; they must not panic on them either.
        let _ = Model::from_bytes(bytes);
        match Model::from_bytes_with_stage(bytes) {
            Ok((model, _)) => {
                check_every_backbone(&model);
                true
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        }
    });
    assert!(
        accepted > 0,
        "no mutant parsed: the mutator only tests the magic bytes"
    );

    // A real (randomly initialised) EfficientNet-Lite0 web file, and a version 2 model file
    // with its real last stage: mutations go to their JSON headers, where the parser's
    // decisions are (the tensor bytes are only copied), and a parsed stage is loaded into the
    // backbone, where shapes and names are checked.
    let device = Device::flex();
    let backbone = Backbone::init(Arch::EfficientnetLite0, &device);
    let file = weights::save_web(&backbone, weights::StorageDtype::F16, "fuzz").unwrap();
    let real_stage = pollster::block_on(backbone.split_last_stage().to_weights()).unwrap();
    let v2 = head_model(&"ab".repeat(32), &["glass", "metal"])
        .to_bytes_with_stage(Some(&real_stage))
        .unwrap();
    let header_mutants = |file: &[u8], seed: u64| -> Vec<Vec<u8>> {
        let header_end = 8 + u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
        let (header, body) = file.split_at(header_end);
        let mut rng = StdRng::seed_from_u64(seed);
        let n = match seconds() {
            Some(s) => (s * 10.0) as usize,
            None => iterations() / 10,
        };
        (0..n)
            .map(|_| [mutate(header, &mut rng), body.to_vec()].concat())
            .collect()
    };
    let (mut tried, mut loaded) = (0, 0);
    for (i, bytes) in header_mutants(&file, 7).iter().enumerate() {
        tried += 1;
        let r = catch_unwind(AssertUnwindSafe(|| {
            weights::load_web(bytes, Some(Arch::EfficientnetLite0), &device)
        }));
        match r {
            Ok(Ok(_)) => loaded += 1,
            Ok(Err(e)) => assert!(!e.to_string().is_empty()),
            Err(_) => panic!("weights: panic on mutant {i}"),
        }
    }
    eprintln!("fuzz weights file: {tried} inputs, {loaded} loaded, 0 panics");
    let (mut tried, mut loaded) = (0, 0);
    for (i, bytes) in header_mutants(&v2, 11).iter().enumerate() {
        tried += 1;
        let r = catch_unwind(AssertUnwindSafe(|| {
            let (model, stage) = Model::from_bytes_with_stage(bytes)?;
            check_every_backbone(&model);
            backbone
                .split_last_stage()
                .with_weights(&stage.unwrap_or_default())
                .map(|_| ())
        }));
        match r {
            Ok(Ok(_)) => loaded += 1,
            Ok(Err(e)) => assert!(!e.to_string().is_empty()),
            Err(_) => panic!("v2 model file with its stage: panic on mutant {i}"),
        }
    }
    eprintln!("fuzz v2 model + stage load: {tried} inputs, {loaded} loaded, 0 panics");
}

/// `share::decode` (what the page's `sharedModel` runs on a link's bytes), seeded with a real
/// link of each precision. A link that decodes must also make a model file that parses: the
/// page imports the link as one.
#[test]
fn fuzzed_share_links_never_panic() {
    let model = head_model(
        &"5eed".repeat(16),
        &["glass", "有害垃圾 🔋", SCIENTIST, SCOTLAND],
    );
    let seeds: Vec<Vec<u8>> = Precision::ALL
        .iter()
        .map(|&p| share::encode(&model, p).unwrap())
        .collect();
    for seed in &seeds {
        assert_eq!(share::decode(seed).unwrap().meta.labels, model.meta.labels);
    }
    let (tried, accepted) =
        fuzz(
            "share::decode (4-bit, int8, f16)",
            &seeds,
            |bytes| match share::decode(bytes) {
                Ok(linked) => {
                    check_every_backbone(&linked);
                    let file = linked
                        .to_bytes()
                        .expect("a decoded link writes a model file");
                    if let Err(e) = Model::from_bytes(&file) {
                        panic!("a decoded link makes a model file that is refused: {e}");
                    }
                    true
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    false
                }
            },
        );
    if seconds().is_none() {
        assert_eq!(tried, seeds.len() * iterations());
    }
    assert!(
        accepted > 0,
        "no mutant decoded: only the magic bytes were tested"
    );
}
