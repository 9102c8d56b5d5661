//! Image bytes -> normalised `[3, 224, 224]` input, the way torchvision's PIL pipeline does it:
//! `Resize(256)` (bilinear, antialiased), `CenterCrop(224)`, `ToTensor`, `Normalize`.
//!
//! The resampler is a port of Pillow's `ImagingResample` (separable, horizontal pass first,
//! 8-bit intermediate, 22-bit fixed-point coefficients), because `image`'s own filters round
//! differently and move logits by more than our parity tolerance.

mod decode;
mod resize;
#[cfg(test)]
mod tests;

use image::RgbImage;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use decode::decode;
use decode::over_white;
pub use resize::{
    center_crop, letterbox, resize, resize_box, resize_shorter, resize_shorter_center_crop,
};

pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];
pub const RESIZE: u32 = 256;
pub const CROP: u32 = 224;
/// Largest side accepted; bigger files are refused before their pixels are allocated.
pub const MAX_SIDE: u32 = 10_000;
/// Most pixels accepted: 8000x8000, above the full-resolution mode of phone cameras (48-50 MP,
/// 8000x6000). Each side alone is not enough: 10000x10000 would be 300 MB of RGB.
pub const MAX_PIXELS: u64 = 64_000_000;
/// Most bytes the decoded frame may take in the decoder's own pixel format (16-bit RGBA is
/// 8 bytes a pixel), checked from the header before it is allocated. A 64 MP 8-bit RGBA frame
/// fits; a wasm tab's memory never shrinks back after a peak, so this is the price of one photo.
pub const MAX_DECODED_BYTES: u64 = 256 * 1024 * 1024;

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

/// `ToTensor` + `Normalize`: HWC u8 -> CHW f32.
///
/// Each channel's 256 possible values are computed once (the same expression, so the same
/// floats): a frame's 150,528 divisions were ~0.1 ms of a ~20 ms batch-1 forward in wasm.
pub fn normalize(img: &RgbImage) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let n = w as usize * h as usize;
    let table: [[f32; 256]; 3] =
        std::array::from_fn(|c| std::array::from_fn(|v| (v as f32 / 255.0 - MEAN[c]) / STD[c]));
    let mut out = vec![0f32; 3 * n];
    let (r, gb) = out.split_at_mut(n);
    let (g, b) = gb.split_at_mut(n);
    for (((p, r), g), b) in img.as_raw().chunks_exact(3).zip(r).zip(g).zip(b) {
        *r = table[0][usize::from(p[0])];
        *g = table[1][usize::from(p[1])];
        *b = table[2][usize::from(p[2])];
    }
    out
}

/// The evaluation transform for one decoded image.
pub fn eval_tensor(img: &RgbImage, fit: Fit) -> Vec<f32> {
    let square = match fit {
        Fit::Crop => resize_shorter_center_crop(img, RESIZE, CROP),
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
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::Decode(format!(
            "the image is {width}x{height}; at most {MAX_SIDE} pixels per side are accepted"
        )));
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Error::Decode(format!(
            "the image is {width}x{height}; at most {} megapixels are accepted",
            MAX_PIXELS / 1_000_000
        )));
    }
    // u64: on wasm32 `usize` would wrap for sides the checks above let through.
    let expected = u64::from(width) * u64::from(height) * 4;
    if width == 0 || height == 0 || rgba.len() as u64 != expected {
        return Err(Error::Invalid(format!(
            "pixels: expected {width}x{height}x4 = {expected} bytes of RGBA, got {}",
            rgba.len()
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
    RgbImage::from_raw(width, height, rgb)
        .ok_or_else(|| Error::Invalid("pixels: buffer size mismatch".into()))
}
