//! Image bytes -> normalised `[3, 224, 224]` input, the way torchvision's PIL pipeline does it:
//! `Resize(256)` (bilinear, antialiased), `CenterCrop(224)`, `ToTensor`, `Normalize`.
//!
//! The resampler is a port of Pillow's `ImagingResample` (separable, horizontal pass first,
//! 8-bit intermediate, 22-bit fixed-point coefficients), because `image`'s own filters round
//! differently and move logits by more than our parity tolerance.

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];
pub const RESIZE: u32 = 256;
pub const CROP: u32 = 224;
/// Largest side accepted; bigger files are refused before their pixels are allocated.
pub const MAX_SIDE: u32 = 10_000;
const MAX_ALLOC: u64 = 400 * 1024 * 1024;

pub const PREPROCESS_DESCRIPTION: &str = "resize shorter side 256 (bilinear, antialiased, as PIL), center crop 224, /255, mean [0.485,0.456,0.406], std [0.229,0.224,0.225]";

/// How a photo is fitted into the square network input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// torchvision's evaluation transform: resize the shorter side to 256, keep the center 224.
    #[default]
    Crop,
    /// Whole image, longer side 224, padded with the ImageNet mean (zero after normalising):
    /// keeps subjects that fill a wide or tall photo.
    Letterbox,
}

impl std::fmt::Display for Fit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fit::Crop => "crop",
            Fit::Letterbox => "letterbox",
        })
    }
}

impl std::str::FromStr for Fit {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "crop" | "center-crop" => Ok(Fit::Crop),
            "letterbox" | "fit" | "pad" => Ok(Fit::Letterbox),
            _ => Err(Error::Invalid(format!(
                "unknown fit mode '{s}': expected crop or letterbox"
            ))),
        }
    }
}

/// Decode an encoded image (JPEG, PNG, WebP, GIF first frame, BMP) into RGB, honouring EXIF
/// orientation and compositing transparency onto white.
pub fn decode(bytes: &[u8]) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(Error::Decode("the file is empty (0 bytes)".into()));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Decode(e.to_string()))?;
    if reader.format().is_none() {
        return Err(Error::Decode(
            "not a supported image format (JPEG, PNG, WebP, GIF or BMP)".into(),
        ));
    }
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::Decode(format!("the image has no pixels ({w}x{h})")));
    }
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(to_rgb_on_white(img))
}

fn decode_error(e: image::ImageError) -> Error {
    match e {
        image::ImageError::Limits(_) => Error::Decode(format!(
            "the image is too large to decode safely (limit {MAX_SIDE} pixels per side)"
        )),
        image::ImageError::Unsupported(u) => Error::Decode(format!("unsupported image: {u}")),
        other => Error::Decode(format!("the file is corrupt or truncated ({other})")),
    }
}

fn to_rgb_on_white(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (src, dst) in rgba.pixels().zip(out.pixels_mut()) {
        for c in 0..3 {
            dst[c] = over_white(src[c], src[3]);
        }
    }
    out
}

/// One channel of a pixel with coverage `alpha`, composited onto white (rounded).
fn over_white(c: u8, alpha: u8) -> u8 {
    let a = alpha as u32;
    ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8
}

/// Pillow's bilinear filter ("triangle"), support 1.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Fixed-point resampling coefficients for one axis: `(first source index, weights)` per output
/// pixel, as Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`. `start..end` is the source
/// box (a crop) along this axis.
fn coefficients(start: f64, end: f64, in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = (end - start) / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale;
    (0..out_size)
        .map(|xx| {
            let center = start + (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5).floor() as i64).max(0) as usize;
            let xmax = ((center + support + 0.5).floor() as i64).min(in_size as i64) as usize;
            let ws: Vec<f64> = (xmin..xmax)
                .map(|x| triangle((x as f64 - center + 0.5) / filterscale))
                .collect();
            let total: f64 = ws.iter().sum();
            let fixed = ws
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { 0.0 };
                    let v = w * (1u64 << PRECISION_BITS) as f64;
                    (if v < 0.0 { v - 0.5 } else { v + 0.5 }).trunc() as i32
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resize the `box_` = (left, top, right, bottom) region of `img` to `out_w x out_h` exactly as
/// Pillow's `Image.resize(size, BILINEAR, box)` does.
pub fn resize_box(img: &RgbImage, box_: [f64; 4], out_w: u32, out_h: u32) -> RgbImage {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let (out_w, out_h) = (out_w as usize, out_h as usize);
    let [left, top, right, bottom] = box_;
    let hcoef = coefficients(left, right, in_w, out_w);
    let vcoef = coefficients(top, bottom, in_h, out_h);
    // Horizontal pass only over the rows the vertical pass reads, as Pillow does.
    let ymin = vcoef.first().map_or(0, |c| c.0);
    let ymax = vcoef.last().map_or(0, |c| c.0 + c.1.len());
    let rows = ymax - ymin;
    let src = img.as_raw();
    let mut mid = vec![0u8; rows * out_w * 3];
    let round = 1i64 << (PRECISION_BITS - 1);
    for y in 0..rows {
        let row = &src[(y + ymin) * in_w * 3..(y + ymin + 1) * in_w * 3];
        for (xx, (xmin, ks)) in hcoef.iter().enumerate() {
            for c in 0..3 {
                let mut ss = round;
                for (i, k) in ks.iter().enumerate() {
                    ss += row[(xmin + i) * 3 + c] as i64 * *k as i64;
                }
                mid[(y * out_w + xx) * 3 + c] = clip8(ss);
            }
        }
    }
    let mut out = vec![0u8; out_h * out_w * 3];
    for (yy, (ymin_k, ks)) in vcoef.iter().enumerate() {
        let base = ymin_k - ymin;
        for x in 0..out_w * 3 {
            let mut ss = round;
            for (i, k) in ks.iter().enumerate() {
                ss += mid[(base + i) * out_w * 3 + x] as i64 * *k as i64;
            }
            out[yy * out_w * 3 + x] = clip8(ss);
        }
    }
    RgbImage::from_raw(out_w as u32, out_h as u32, out).expect("buffer sized for the image")
}

pub fn resize(img: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    if img.dimensions() == (out_w, out_h) {
        return img.clone();
    }
    let box_ = [0.0, 0.0, img.width() as f64, img.height() as f64];
    resize_box(img, box_, out_w, out_h)
}

/// torchvision `Resize(size)` with an int: the shorter side becomes `size`, the longer one is
/// scaled and truncated.
pub fn resize_shorter(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (nw, nh) = if w <= h {
        (size, ((size as u64 * h as u64) / w as u64) as u32)
    } else {
        (((size as u64 * w as u64) / h as u64) as u32, size)
    };
    resize(img, nw.max(1), nh.max(1))
}

/// torchvision `CenterCrop`: offsets use Python's round-half-to-even.
pub fn center_crop(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w < size || h < size {
        // torchvision pads with zeros first; only reachable for images resized below `size`.
        let mut padded = RgbImage::new(w.max(size), h.max(size));
        let (ox, oy) = ((w.max(size) - w) / 2, (h.max(size) - h) / 2);
        image::imageops::replace(&mut padded, img, ox as i64, oy as i64);
        return center_crop(&padded, size);
    }
    let top = ((h - size) as f64 / 2.0).round_ties_even() as u32;
    let left = ((w - size) as f64 / 2.0).round_ties_even() as u32;
    image::imageops::crop_imm(img, left, top, size, size).to_image()
}

/// Longer side to `size`, centered on a square of the ImageNet mean colour.
pub fn letterbox(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let scale = size as f64 / w.max(h) as f64;
    let nw = ((w as f64 * scale).round() as u32).clamp(1, size);
    let nh = ((h as f64 * scale).round() as u32).clamp(1, size);
    let inner = resize(img, nw, nh);
    let fill = image::Rgb(MEAN.map(|m| (m * 255.0).round() as u8));
    let mut out = RgbImage::from_pixel(size, size, fill);
    image::imageops::replace(
        &mut out,
        &inner,
        ((size - nw) / 2) as i64,
        ((size - nh) / 2) as i64,
    );
    out
}

/// `ToTensor` + `Normalize`: HWC u8 -> CHW f32.
pub fn normalize(img: &RgbImage) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let n = (w * h) as usize;
    let mut out = vec![0f32; 3 * n];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * n + i] = (p[c] as f32 / 255.0 - MEAN[c]) / STD[c];
        }
    }
    out
}

/// The evaluation transform for one decoded image.
pub fn eval_tensor(img: &RgbImage, fit: Fit) -> Vec<f32> {
    let square = match fit {
        Fit::Crop => center_crop(&resize_shorter(img, RESIZE), CROP),
        Fit::Letterbox => letterbox(img, CROP),
    };
    normalize(&square)
}

/// Decode and apply the evaluation transform.
pub fn preprocess(bytes: &[u8], fit: Fit) -> Result<Vec<f32>> {
    Ok(eval_tensor(&decode(bytes)?, fit))
}

/// torchvision `RandomResizedCrop(224, scale=(0.08, 1), ratio=(3/4, 4/3))` followed by
/// `RandomHorizontalFlip()`, drawing from the caller's seeded RNG so runs repeat.
pub fn augment<R: Rng>(img: &RgbImage, rng: &mut R) -> Vec<f32> {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let area = w * h;
    let (lr0, lr1) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    let mut crop = None;
    for _ in 0..10 {
        let target = area * rng.random_range(0.08..=1.0);
        let aspect = rng.random_range(lr0..=lr1).exp();
        let cw = (target * aspect).sqrt().round();
        let ch = (target / aspect).sqrt().round();
        if cw > 0.0 && ch > 0.0 && cw <= w && ch <= h {
            let top = rng.random_range(0..=(h - ch) as u32) as f64;
            let left = rng.random_range(0..=(w - cw) as u32) as f64;
            crop = Some([left, top, left + cw, top + ch]);
            break;
        }
    }
    // torchvision's fallback: the largest centered crop with a ratio inside the range.
    let box_ = crop.unwrap_or_else(|| {
        let ratio = w / h;
        let (cw, ch) = if ratio < 3.0 / 4.0 {
            (w, (w / (3.0 / 4.0)).round())
        } else if ratio > 4.0 / 3.0 {
            ((h * (4.0 / 3.0)).round(), h)
        } else {
            (w, h)
        };
        let top = ((h - ch) / 2.0).floor();
        let left = ((w - cw) / 2.0).floor();
        [left, top, left + cw, top + ch]
    });
    let mut out = resize_box(img, box_, CROP, CROP);
    if rng.random_bool(0.5) {
        image::imageops::flip_horizontal_in_place(&mut out);
    }
    normalize(&out)
}

/// Longest side of the UI copy of an image.
pub const THUMB_LONG: u32 = 512;

/// The copy of an image the UI keeps: JPEG, shorter side at most `RESIZE` (256) so it still holds
/// everything the eval transform looks at and can be embedded again for another backbone.
pub fn thumbnail_jpeg(img: &RgbImage) -> Result<Vec<u8>> {
    let (w, h) = img.dimensions();
    let scale = (RESIZE as f64 / w.min(h) as f64)
        .min(THUMB_LONG as f64 / w.max(h) as f64)
        .min(1.0);
    let small;
    let img = if scale < 1.0 {
        let nw = ((w as f64 * scale).round() as u32).max(1);
        let nh = ((h as f64 * scale).round() as u32).max(1);
        small = resize(img, nw, nh);
        &small
    } else {
        img
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88)
        .encode_image(img)
        .map_err(|e| Error::Decode(format!("could not encode the thumbnail: {e}")))?;
    Ok(out)
}

/// RGB from the RGBA pixels a canvas gives (`ImageData.data`), alpha composited on white as
/// `decode` does.
pub fn from_rgba(rgba: &[u8], width: u32, height: u32) -> Result<RgbImage> {
    let expected = width as usize * height as usize * 4;
    if width == 0 || height == 0 || rgba.len() != expected {
        return Err(Error::Invalid(format!(
            "pixels: expected {width}x{height}x4 = {expected} bytes of RGBA, got {}",
            rgba.len()
        )));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::Decode(format!(
            "the image is {width}x{height}; at most {MAX_SIDE} pixels per side are accepted"
        )));
    }
    let rgb = rgba
        .chunks_exact(4)
        .flat_map(|p| {
            [
                over_white(p[0], p[3]),
                over_white(p[1], p[3]),
                over_white(p[2], p[3]),
            ]
        })
        .collect();
    Ok(RgbImage::from_raw(width, height, rgb).expect("length checked above"))
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let rgb = to_rgb_on_white(DynamicImage::ImageRgba8(img));
        assert!(rgb.pixels().all(|p| p.0 == [255, 255, 255]));
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
}
