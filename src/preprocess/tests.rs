use super::decode::*;
use super::resize::*;
use super::*;
use image::DynamicImage;
use image::metadata::Orientation;
use rand::SeedableRng;

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 3 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    })
}

#[test]
fn resize_shorter_matches_torchvision_sizes() {
    assert_eq!(
        resize_shorter(&gradient(150, 150), 256).dimensions(),
        (256, 256)
    );
    assert_eq!(
        resize_shorter(&gradient(512, 384), 256).dimensions(),
        (341, 256)
    );
    assert_eq!(
        resize_shorter(&gradient(300, 1000), 256).dimensions(),
        (256, 853)
    );
}

#[test]
fn center_crop_rounds_half_to_even() {
    // (341 - 224) / 2 = 58.5 -> 58, as Python's round().
    let img = gradient(341, 256);
    let c = center_crop(&img, 224);
    assert_eq!(c.dimensions(), (224, 224));
    assert_eq!(c.get_pixel(0, 0), img.get_pixel(58, 16));
}

#[test]
fn constant_image_survives_resampling() {
    let img = RgbImage::from_pixel(37, 53, image::Rgb([200, 10, 99]));
    let out = resize(&img, 256, 366);
    assert!(out.pixels().all(|p| p.0 == [200, 10, 99]));
    let down = resize(
        &RgbImage::from_pixel(1000, 800, image::Rgb([5, 6, 7])),
        320,
        256,
    );
    assert!(down.pixels().all(|p| p.0 == [5, 6, 7]));
}

#[test]
fn normalize_layout_is_chw() {
    let img = RgbImage::from_pixel(2, 1, image::Rgb([255, 0, 128]));
    let t = normalize(&img);
    assert_eq!(t.len(), 6);
    assert!((t[0] - (1.0 - MEAN[0]) / STD[0]).abs() < 1e-6);
    assert!((t[2] - (0.0 - MEAN[1]) / STD[1]).abs() < 1e-6);
}

#[test]
fn letterbox_pads_with_mean() {
    let img = RgbImage::from_pixel(400, 100, image::Rgb([255, 255, 255]));
    let t = eval_tensor(&img, Fit::Letterbox);
    assert_eq!(t.len(), 3 * 224 * 224);
    // Top-left is padding: exactly zero after normalisation, up to u8 rounding of the mean.
    assert!(
        t[0].abs() < 0.01 && t[224 * 224].abs() < 0.01,
        "{} {}",
        t[0],
        t[224 * 224]
    );
    // Center row is image.
    assert!(t[112 * 224 + 112] > 2.0);
}

#[test]
fn augment_is_seeded() {
    let img = gradient(150, 150);
    let a = augment(&img, &mut rand::rngs::StdRng::seed_from_u64(7));
    let b = augment(&img, &mut rand::rngs::StdRng::seed_from_u64(7));
    let c = augment(&img, &mut rand::rngs::StdRng::seed_from_u64(8));
    assert_eq!(a.len(), 3 * 224 * 224);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn bad_bytes_give_clear_errors() {
    let e = preprocess(&[], Fit::Crop).unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
    let e = preprocess(b"hello world, not an image", Fit::Crop)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a supported image format"), "{e}");
    let mut png = Vec::new();
    gradient(64, 64)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let e = preprocess(&png[..png.len() / 2], Fit::Crop)
        .unwrap_err()
        .to_string();
    assert!(e.contains("corrupt or truncated"), "{e}");
}

#[test]
fn alpha_is_composited_on_white() {
    let img = image::RgbaImage::from_pixel(4, 4, image::Rgba([0, 0, 0, 0]));
    let rgb = to_rgb_on_white(DynamicImage::ImageRgba8(img)).unwrap();
    assert!(rgb.pixels().all(|p| p.0 == [255, 255, 255]));
}

/// What `to_rgb_on_white` computed before it converted in place: `image`'s conversions.
fn reference_rgb(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y);
        image::Rgb([0, 1, 2].map(|c| over_white(p[c], p[3])))
    })
}

#[test]
fn in_place_conversions_equal_the_image_crate() {
    let (w, h) = (7u32, 5u32);
    let v = |x: u32, y: u32, k: u32| ((x * 37 + y * 11 + k * 53) % 256) as u8;
    let images = [
        DynamicImage::ImageLuma8(image::GrayImage::from_fn(w, h, |x, y| {
            image::Luma([v(x, y, 0)])
        })),
        DynamicImage::ImageLumaA8(image::GrayAlphaImage::from_fn(w, h, |x, y| {
            image::LumaA([v(x, y, 0), v(x, y, 1)])
        })),
        DynamicImage::ImageRgba8(image::RgbaImage::from_fn(w, h, |x, y| {
            image::Rgba([v(x, y, 0), v(x, y, 1), v(x, y, 2), v(x, y, 3)])
        })),
        DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(w, h, |x, y| {
            image::Rgb([0, 1, 2].map(|k| u16::from(v(x, y, k)) * 256 + 100))
        })),
        DynamicImage::ImageRgba16(image::ImageBuffer::from_fn(w, h, |x, y| {
            image::Rgba([0, 1, 2, 3].map(|k| u16::from(v(x, y, k)) * 250))
        })),
        DynamicImage::ImageRgb8(gradient(w, h)),
    ];
    for img in images {
        let color = img.color();
        assert_eq!(
            to_rgb_on_white(img.clone()).unwrap(),
            reference_rgb(img),
            "{color:?}"
        );
    }
}

#[test]
fn orientation_in_place_equals_apply_orientation() {
    use Orientation::*;
    for (w, h) in [(5, 3), (3, 5), (4, 4), (1, 6), (6, 1), (1, 1)] {
        let img = gradient(w, h);
        for o in [
            NoTransforms,
            Rotate90,
            Rotate180,
            Rotate270,
            FlipHorizontal,
            FlipVertical,
            Rotate90FlipH,
            Rotate270FlipH,
        ] {
            let mut expected = DynamicImage::ImageRgb8(img.clone());
            expected.apply_orientation(o);
            assert_eq!(
                orient(img.clone(), o),
                expected.into_rgb8(),
                "{w}x{h} {o:?}"
            );
        }
    }
}

#[test]
fn bounded_crop_equals_resize_then_crop() {
    for (w, h) in [
        (150, 150),
        (256, 256),
        (512, 384),
        (300, 1000),
        (257, 300),
        (5, 400),
        (400, 5),
        (1, 700),
        (900, 2),
        (1000, 999),
    ] {
        let img = gradient(w, h);
        let full = center_crop(&resize_shorter(&img, RESIZE), CROP);
        let bounded = resize_shorter_center_crop(&img, RESIZE, CROP);
        assert_eq!(bounded.dimensions(), (CROP, CROP), "{w}x{h}");
        assert!(full == bounded, "{w}x{h}: the bounded crop differs");
    }
    // A strip that used to make a 256x2,560,000 intermediate (2 GB) now embeds.
    let strip = gradient(1, MAX_SIDE);
    assert_eq!(eval_tensor(&strip, Fit::Crop).len(), 3 * 224 * 224);
    assert_eq!(eval_tensor(&strip, Fit::Letterbox).len(), 3 * 224 * 224);
    let strip = gradient(MAX_SIDE, 2);
    assert_eq!(eval_tensor(&strip, Fit::Crop).len(), 3 * 224 * 224);
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&gradient(w, h))
        .unwrap();
    out
}

#[test]
fn truncated_jpegs_are_refused_and_trailing_data_is_not() {
    let full = jpeg(64, 48);
    assert!(!jpeg_is_truncated(&full));
    assert_eq!(decode(&full).unwrap().dimensions(), (64, 48));
    for cut in [full.len() / 3, full.len() - 2, full.len() - 1, 4] {
        assert!(jpeg_is_truncated(&full[..cut]), "cut at {cut}");
        let e = decode(&full[..cut]).unwrap_err().to_string();
        assert!(e.contains("truncated"), "cut at {cut}: {e}");
    }
    // Motion photos and some cameras append data after the end-of-image marker.
    let mut trailing = full.clone();
    trailing.extend_from_slice(b"\0\0\0\x18ftypmp42 trailing video");
    assert!(decode(&trailing).is_ok());
}

#[test]
fn unsupported_formats_are_named() {
    let ftyp = |major: &[u8], compat: &[u8]| {
        let mut b = vec![0, 0, 0, (16 + compat.len()) as u8];
        b.extend_from_slice(b"ftyp");
        b.extend_from_slice(major);
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(compat);
        b.extend_from_slice(&[0; 64]);
        b
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (ftyp(b"heic", b"mif1heic"), "HEIC"),
        (ftyp(b"mif1", b"mif1miafheic"), "HEIC"),
        (ftyp(b"avif", b"mif1miaf"), "AVIF"),
        (ftyp(b"mif1", b"avifmiaf"), "AVIF"),
        (ftyp(b"isom", b"isomavc1"), "video"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(), "SVG"),
        (
            b"\xEF\xBB\xBF  <?xml version='1.0'?>\n<svg></svg>".to_vec(),
            "SVG",
        ),
        (b"%PDF-1.7\n%\xE2\xE3".to_vec(), "PDF"),
        (b"II*\0\x08\0\0\0".to_vec(), "TIFF"),
        (b"PK\x03\x04\x14\0".to_vec(), "ZIP"),
        ("小猫的照片, not a photo".as_bytes().to_vec(), "text"),
        (
            b"\x00\x01\x02\x03garbage".to_vec(),
            "not a supported image format",
        ),
    ];
    for (bytes, name) in cases {
        let e = decode(&bytes).unwrap_err().to_string();
        assert!(e.contains(name), "{name}: {e}");
        assert!(
            e.contains("JPEG, PNG"),
            "{name}: says what is supported: {e}"
        );
    }
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

/// A PNG header declaring `w`x`h` at `depth` bits of colour type `color`, and no pixels.
fn png_header(w: u32, h: u32, depth: u8, color: u8) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0d".to_vec();
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    // An empty zlib stream, then IEND: the decoder reads up to the first IDAT on opening.
    for (kind, data) in [
        (&b"IDAT"[..], &b"\x78\x01\x03\x00\x00\x00\x00\x01"[..]),
        (b"IEND", b""),
    ] {
        let body = [kind, data].concat();
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    png
}

#[test]
fn decoded_size_is_bounded_from_the_header() {
    // 10000x10000 16-bit RGBA: 800 MB decoded, within the side limit.
    let e = decode(&png_header(10_000, 10_000, 16, 6))
        .unwrap_err()
        .to_string();
    assert!(e.contains("megapixels"), "{e}");
    // 6000x6000 16-bit RGBA: 36 MP, under the pixel limit, but 288 MB decoded.
    let e = decode(&png_header(6_000, 6_000, 16, 6))
        .unwrap_err()
        .to_string();
    assert!(e.contains("275 MB") && e.contains("256 MB"), "{e}");
    // 8-bit 8000x8000 is within both limits: it gets as far as the missing pixel data.
    let e = decode(&png_header(8_000, 8_000, 8, 0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("corrupt or truncated"), "{e}");
    let e = from_rgba(&[], 9_000, 9_000).unwrap_err().to_string();
    assert!(e.contains("megapixels"), "{e}");
}

#[test]
fn thumbnail_keeps_the_eval_region_and_decodes_back() {
    let img = gradient(1200, 800);
    let jpeg = thumbnail_jpeg(&img).unwrap();
    let back = decode(&jpeg).unwrap();
    assert_eq!(back.dimensions(), (384, 256));
    let panorama = gradient(4000, 500);
    assert_eq!(
        decode(&thumbnail_jpeg(&panorama).unwrap())
            .unwrap()
            .dimensions(),
        (512, 64)
    );
    let tiny = gradient(3, 2);
    assert_eq!(
        decode(&thumbnail_jpeg(&tiny).unwrap())
            .unwrap()
            .dimensions(),
        (3, 2)
    );
}

#[test]
fn rgba_pixels_composite_on_white_and_check_their_size() {
    let px = [10, 20, 30, 255, 0, 0, 0, 0];
    let img = from_rgba(&px, 2, 1).unwrap();
    assert_eq!(img.get_pixel(0, 0).0, [10, 20, 30]);
    assert_eq!(img.get_pixel(1, 0).0, [255, 255, 255]);
    assert!(
        from_rgba(&px, 3, 1)
            .unwrap_err()
            .to_string()
            .contains("expected 3x1x4")
    );
    assert!(from_rgba(&[], 0, 0).is_err());
}

/// Pillow's resampler as first ported (a vector of weights per output pixel, 64-bit sums, one
/// channel at a time): `resize_box_window` must give the same bytes.
fn reference_resize_box_window(
    img: &RgbImage,
    [left, top, right, bottom]: [f64; 4],
    (out_w, out_h): (usize, usize),
    cols: std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
) -> Vec<u8> {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let hcoef = coefficients(left, right, in_w, out_w, cols);
    let vcoef = coefficients(top, bottom, in_h, out_h, rows);
    let (out_w, out_h) = (hcoef.len(), vcoef.len());
    let ymin = vcoef.first().map_or(0, |c| c.0);
    let ymax = vcoef.last().map_or(0, |c| c.0 + c.1.len()).max(ymin);
    let src = img.as_raw();
    let clip = |v: i64| (v >> PRECISION_BITS).clamp(0, 255) as u8;
    let round = 1i64 << (PRECISION_BITS - 1);
    let mut mid = vec![0u8; (ymax - ymin) * out_w * 3];
    for y in 0..ymax - ymin {
        let row = &src[(y + ymin) * in_w * 3..(y + ymin + 1) * in_w * 3];
        for (xx, (xmin, ks)) in hcoef.iter().enumerate() {
            for c in 0..3 {
                let mut ss = round;
                for (i, k) in ks.iter().enumerate() {
                    ss += row[(xmin + i) * 3 + c] as i64 * *k as i64;
                }
                mid[(y * out_w + xx) * 3 + c] = clip(ss);
            }
        }
    }
    let mut out = vec![0u8; out_h * out_w * 3];
    for (yy, (ymin_k, ks)) in vcoef.iter().enumerate() {
        for x in 0..out_w * 3 {
            let mut ss = round;
            for (i, k) in ks.iter().enumerate() {
                ss += mid[(ymin_k - ymin + i) * out_w * 3 + x] as i64 * *k as i64;
            }
            out[yy * out_w * 3 + x] = clip(ss);
        }
    }
    out
}

#[test]
fn resampler_gives_the_reference_bytes() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let noise = |w: u32, h: u32, rng: &mut rand::rngs::StdRng| {
        RgbImage::from_fn(w, h, |_, _| {
            image::Rgb([rng.random(), rng.random(), rng.random()])
        })
    };
    // (source size, output size, box): up, down (many taps), a crop window, a strip, extremes.
    type Case = ((u32, u32), (u32, u32), Option<[f64; 4]>);
    let cases: [Case; 7] = [
        ((150, 150), (256, 256), None),
        ((224, 224), (256, 256), None),
        ((640, 480), (341, 256), None),
        ((1000, 37), (256, 9), None),
        ((3, 700), (256, 59_733), None),
        ((255, 255), (255, 255), None),
        ((200, 120), (90, 70), Some([10.5, 3.0, 190.25, 117.0])),
    ];
    for ((w, h), (ow, oh), box_) in cases {
        let img = noise(w, h, &mut rng);
        let box_ = box_.unwrap_or([0.0, 0.0, w as f64, h as f64]);
        // The whole output, and a window of it as `resize_shorter_center_crop` asks.
        let (cw, ch) = (ow.min(224) as usize, oh.min(224) as usize);
        let (cx, cy) = ((ow as usize - cw) / 2, (oh as usize - ch) / 2);
        let windows = [
            (0..ow as usize, 0..(oh as usize).min(400)),
            (cx..cx + cw, cy..cy + ch),
        ];
        for (cols, rows) in windows {
            let got = resize_box_window(&img, box_, ow, oh, cols.clone(), rows.clone());
            assert_eq!(
                (got.width() as usize, got.height() as usize),
                (cols.len(), rows.len())
            );
            let want =
                reference_resize_box_window(&img, box_, (ow as usize, oh as usize), cols, rows);
            assert!(got.as_raw() == &want, "{w}x{h} -> {ow}x{oh} {box_:?}");
        }
    }
}

#[test]
fn normalize_gives_the_formula_to_the_bit() {
    let img = RgbImage::from_fn(256, 3, |x, y| {
        image::Rgb([x as u8, (x as u8).wrapping_add(y as u8 * 85), 255 - x as u8])
    });
    let t = normalize(&img);
    let n = 256 * 3;
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            let want = (p[c] as f32 / 255.0 - MEAN[c]) / STD[c];
            assert_eq!(
                t[c * n + i].to_bits(),
                want.to_bits(),
                "pixel {i} channel {c}"
            );
        }
    }
}
