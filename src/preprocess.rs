//! Image bytes -> normalised `[3, 224, 224]` input, the way torchvision's PIL pipeline does it:
//! `Resize(256)` (bilinear, antialiased), `CenterCrop(224)`, `ToTensor`, `Normalize`.
//!
//! The resampler is a port of Pillow's `ImagingResample` (separable, horizontal pass first,
//! 8-bit intermediate, 22-bit fixed-point coefficients), because `image`'s own filters round
//! differently and move logits by more than our parity tolerance.

use std::ops::Range;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage, imageops};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

const MB: f64 = 1024.0 * 1024.0;

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

const SUPPORTED: &str = "JPEG, PNG, WebP, GIF or BMP";

/// Names the formats people drop that sortwise cannot read, from their magic bytes, so the
/// message can say what the file is ("an HEIC photo") rather than only what it is not.
fn unsupported_format(bytes: &[u8]) -> Option<&'static str> {
    let at = |range: std::ops::Range<usize>| bytes.get(range).unwrap_or(&[]);
    // ISO base media (HEIF/HEIC, AVIF, MP4, MOV, CR3): a `ftyp` box first, its major brand,
    // then compatible brands up to the box's size.
    if at(4..8) == b"ftyp" {
        let word = |i: usize| -> [u8; 4] { at(i..i + 4).try_into().unwrap_or([0; 4]) };
        let size = u32::from_be_bytes(word(0)) as usize;
        let brands: Vec<[u8; 4]> = std::iter::once(word(8))
            .chain((16..size.min(bytes.len()).min(256)).step_by(4).map(word))
            .collect();
        let has = |names: &[&[u8; 4]]| brands.iter().any(|b| names.contains(&b));
        return Some(if has(&[b"avif", b"avis"]) {
            "AVIF"
        } else if has(&[b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"]) {
            "HEIC"
        } else if has(&[b"mif1", b"msf1"]) {
            "HEIF"
        } else if has(&[b"crx "]) {
            "Canon CR3 raw"
        } else {
            "MP4/MOV video"
        });
    }
    let text = {
        let head = &bytes[..bytes.len().min(1024)];
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        let start = head
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(head.len());
        &head[start..]
    };
    let lower: Vec<u8> = text.iter().take(512).map(u8::to_ascii_lowercase).collect();
    let contains = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    if lower.starts_with(b"<svg") || (lower.starts_with(b"<") && contains(b"<svg")) {
        return Some("SVG");
    }
    if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") {
        return Some("HTML");
    }
    let magic: &[(&[u8], &str)] = &[
        (b"%PDF", "PDF"),
        (b"II*\0", "TIFF (or camera raw)"),
        (b"MM\0*", "TIFF (or camera raw)"),
        (b"8BPS", "Photoshop (PSD)"),
        (b"\xFF\x0A", "JPEG XL"),
        (b"\0\0\0\x0CJXL \r\n\x87\n", "JPEG XL"),
        (b"\0\0\0\x0CjP  \r\n\x87\n", "JPEG 2000"),
        (b"\xFF\x4F\xFF\x51", "JPEG 2000"),
        (b"PK\x03\x04", "ZIP archive"),
        (b"\x1F\x8B", "gzip archive"),
        (b"\0\0\x01\0", "ICO icon"),
        (b"qoif", "QOI"),
        (b"DDS ", "DDS"),
        (b"#?RADIANCE", "Radiance HDR"),
        (b"\x76\x2F\x31\x01", "OpenEXR"),
    ];
    magic
        .iter()
        .find(|(m, _)| bytes.starts_with(m))
        .map(|(_, name)| *name)
}

/// Whether `bytes` look like text: what a file renamed `.jpg` usually is.
fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        // A multi-byte character cut at the end of the window is still text.
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > head.len(),
    };
    valid
        && !head.is_empty()
        && head
            .iter()
            .all(|&b| b >= 0x20 || matches!(b, b'\n' | b'\r' | b'\t' | 0x0C))
}

/// Whether a JPEG ends before its end-of-image marker. zune-jpeg (non-strict, as `image` runs
/// it) fills what is missing with grey and reports success, so a photo cut off by an
/// interrupted copy would be embedded as half grey. Walks the marker segments by their lengths
/// (an EXIF thumbnail's own EOI sits inside APP1 and is skipped) and the entropy-coded data of
/// every scan; bytes after the EOI (motion photos append a video) do not matter.
fn jpeg_is_truncated(b: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // Fill bytes and stray data between segments, which decoders tolerate.
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return true;
        };
        i += 1;
        match marker {
            0xD9 => return false,
            0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let Some(len) = b
            .get(i..i + 2)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
        else {
            return true;
        };
        if len < 2 {
            return true;
        }
        i += len;
        if i > b.len() {
            return true;
        }
        if marker == 0xDA {
            // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte) or a restart marker
            // inside the scan; any other marker ends it.
            loop {
                match b.get(i) {
                    None => return true,
                    Some(0xFF) => match b.get(i + 1) {
                        None => return true,
                        Some(0xFF) => i += 1,
                        Some(0x00 | 0xD0..=0xD7) => i += 2,
                        Some(_) => break,
                    },
                    Some(_) => i += 1,
                }
            }
        }
    }
}

/// Decode an encoded image (JPEG, PNG, WebP, GIF first frame, BMP) into RGB, honouring EXIF
/// orientation and compositing transparency onto white.
///
/// Memory: the frame is checked against [`MAX_PIXELS`] and [`MAX_DECODED_BYTES`] from the
/// header before it is allocated, and converted to RGB and oriented in place where the pixel
/// format allows, so a photo costs its decoded frame (or its 3-byte RGB copy, the larger) and
/// not a multiple of it.
pub fn decode(bytes: &[u8]) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(Error::Decode("the file is empty (0 bytes)".into()));
    }
    if let Some(name) = unsupported_format(bytes) {
        return Err(Error::Decode(format!(
            "{name} files are not supported; use {SUPPORTED} (convert it, or export it as JPEG)"
        )));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Decode(e.to_string()))?;
    let format = match reader.format() {
        None if looks_like_text(bytes) => {
            return Err(Error::Decode(format!(
                "not a supported image format ({SUPPORTED}): the file holds text"
            )));
        }
        None => {
            return Err(Error::Decode(format!(
                "not a supported image format ({SUPPORTED})"
            )));
        }
        Some(f) => f,
    };
    if !matches!(
        format,
        ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Gif
            | ImageFormat::Bmp
    ) {
        let name = format.extensions_str().first().copied().unwrap_or("this");
        return Err(Error::Decode(format!(
            "{} files are not supported; use {SUPPORTED}",
            name.to_ascii_uppercase()
        )));
    }
    if format == ImageFormat::Jpeg && jpeg_is_truncated(bytes) {
        return Err(Error::Decode(
            "the JPEG file is truncated or corrupt: it ends before its end-of-image marker (was \
             the copy or download interrupted?)"
                .into(),
        ));
    }
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::Decode(format!("the image has no pixels ({w}x{h})")));
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > MAX_PIXELS {
        return Err(Error::Decode(format!(
            "the image is {w}x{h} ({:.1} megapixels); the limit is {} megapixels (scale it down)",
            pixels as f64 / 1e6,
            MAX_PIXELS / 1_000_000
        )));
    }
    // `into_decoder` + `from_decoder` does not reserve the frame against `max_alloc` the way
    // `ImageReader::decode` does: without this a tiny 16-bit PNG takes what its header says.
    let frame = decoder.total_bytes();
    if frame > MAX_DECODED_BYTES {
        return Err(Error::Decode(format!(
            "the image is {w}x{h} with {:?} pixels: decoded it would take {:.0} MB, over the \
             limit of {:.0} MB (save it as an 8-bit JPEG or PNG, or scale it down)",
            decoder.color_type(),
            frame as f64 / MB,
            MAX_DECODED_BYTES as f64 / MB
        )));
    }
    limits.reserve(frame).map_err(decode_error)?;
    decoder.set_limits(limits).map_err(decode_error)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let img = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    Ok(orient(to_rgb_on_white(img)?, orientation))
}

fn decode_error(e: image::ImageError) -> Error {
    match e {
        image::ImageError::Limits(_) => Error::Decode(format!(
            "the image is too large to decode safely (limits: {MAX_SIDE} pixels per side, {} \
             megapixels, {:.0} MB decoded)",
            MAX_PIXELS / 1_000_000,
            MAX_DECODED_BYTES as f64 / MB
        )),
        image::ImageError::Unsupported(u) => Error::Decode(format!("unsupported image: {u}")),
        other => Error::Decode(format!("the file is corrupt or truncated ({other})")),
    }
}

/// RGB with transparency composited on white. The 8-bit formats are converted inside their own
/// buffer (RGBA packs down, gray expands up), so no second frame-sized buffer exists at once.
fn to_rgb_on_white(img: DynamicImage) -> Result<RgbImage> {
    let (w, h) = (img.width(), img.height());
    let n = w as usize * h as usize;
    let v = match img {
        DynamicImage::ImageRgb8(rgb) => return Ok(rgb),
        DynamicImage::ImageLuma8(gray) => {
            let mut v = gray.into_raw();
            v.resize(3 * n, 0);
            // Backwards: pixel i's source (byte i) is read before any write reaches it.
            for i in (0..n).rev() {
                let g = v[i];
                v[3 * i..3 * i + 3].fill(g);
            }
            v
        }
        DynamicImage::ImageLumaA8(gray) => {
            let mut v = gray.into_raw();
            v.resize(3 * n, 0);
            for i in (0..n).rev() {
                let c = over_white(v[2 * i], v[2 * i + 1]);
                v[3 * i..3 * i + 3].fill(c);
            }
            v
        }
        other => {
            let mut v = if other.color().has_alpha() {
                other.into_rgba8().into_raw()
            } else {
                return Ok(other.into_rgb8());
            };
            // Forwards: pixel i's RGB lands at or before its RGBA source.
            for i in 0..n {
                let a = v[4 * i + 3];
                for c in 0..3 {
                    v[3 * i + c] = over_white(v[4 * i + c], a);
                }
            }
            v.truncate(3 * n);
            v.shrink_to_fit();
            v
        }
    };
    RgbImage::from_raw(w, h, v).ok_or_else(|| Error::Decode("pixel buffer size mismatch".into()))
}

/// EXIF orientation without a second frame: flips are in place and the quarter turns are an
/// in-place transpose followed by a flip (what `DynamicImage::apply_orientation` computes).
fn orient(mut img: RgbImage, o: Orientation) -> RgbImage {
    match o {
        Orientation::NoTransforms => {}
        Orientation::Rotate90 => {
            img = transpose(img);
            imageops::flip_horizontal_in_place(&mut img);
        }
        Orientation::Rotate180 => imageops::rotate180_in_place(&mut img),
        Orientation::Rotate270 => {
            img = transpose(img);
            imageops::flip_vertical_in_place(&mut img);
        }
        Orientation::FlipHorizontal => imageops::flip_horizontal_in_place(&mut img),
        Orientation::FlipVertical => imageops::flip_vertical_in_place(&mut img),
        Orientation::Rotate90FlipH => img = transpose(img),
        Orientation::Rotate270FlipH => {
            img = transpose(img);
            imageops::rotate180_in_place(&mut img);
        }
    }
    img
}

/// Pixel (x, y) to (y, x) inside the same buffer, by following the permutation's cycles; one
/// bit per pixel records what has moved.
fn transpose(img: RgbImage) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut v = img.into_raw();
    let n = w * h;
    if w > 1 && h > 1 {
        let mut moved = vec![0u64; n.div_ceil(64)];
        for start in 0..n {
            if moved[start / 64] >> (start % 64) & 1 == 1 {
                continue;
            }
            let mut carry = [v[3 * start], v[3 * start + 1], v[3 * start + 2]];
            let mut i = start;
            loop {
                // Row-major index i = y*w + x of the source goes to x*h + y of the result.
                let j = (i % w) * h + i / w;
                let dst = &mut v[3 * j..3 * j + 3];
                let here = [dst[0], dst[1], dst[2]];
                dst.copy_from_slice(&carry);
                carry = here;
                moved[j / 64] |= 1 << (j % 64);
                i = j;
                if j == start {
                    break;
                }
            }
        }
    }
    RgbImage::from_raw(h as u32, w as u32, v).expect("same buffer, sides swapped")
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
/// pixel in `outputs` (of `out_size`), as Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`.
/// `start..end` is the source box (a crop) along this axis. Each output pixel's coefficients
/// depend only on its own index, so a range gives exactly those pixels of the full resize.
fn coefficients(
    start: f64,
    end: f64,
    in_size: usize,
    out_size: usize,
    outputs: Range<usize>,
) -> Vec<(usize, Vec<i32>)> {
    let scale = (end - start) / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale;
    outputs
        .map(|xx| {
            let center = start + (xx as f64 + 0.5) * scale;
            let xmax = ((center + support + 0.5).floor() as i64).clamp(0, in_size as i64) as usize;
            // Clamped to xmax so a box past the image gives no taps rather than indices past it.
            let xmin = (((center - support + 0.5).floor() as i64).max(0) as usize).min(xmax);
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
    let (w, h) = (out_w as usize, out_h as usize);
    resize_box_window(img, box_, out_w, out_h, 0..w, 0..h)
}

/// Columns `cols` and rows `rows` of [`resize_box`]'s result, computed without the rest of it:
/// `Resize(256)` of a 1x10000 strip is 256x2,560,000 pixels (2 GB), of which `CenterCrop(224)`
/// keeps 224x224. Bit for bit the crop of the full resize (see `coefficients`).
fn resize_box_window(
    img: &RgbImage,
    box_: [f64; 4],
    out_w: u32,
    out_h: u32,
    cols: Range<usize>,
    rows: Range<usize>,
) -> RgbImage {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let [left, top, right, bottom] = box_;
    let hcoef = coefficients(left, right, in_w, out_w as usize, cols);
    let vcoef = coefficients(top, bottom, in_h, out_h as usize, rows);
    let (out_w, out_h) = (hcoef.len(), vcoef.len());
    // Horizontal pass only over the rows the vertical pass reads, as Pillow does.
    let ymin = vcoef.first().map_or(0, |c| c.0);
    let ymax = vcoef.last().map_or(0, |c| c.0 + c.1.len()).max(ymin);
    let mid_rows = ymax - ymin;
    let src = img.as_raw();
    let mut mid = vec![0u8; mid_rows * out_w * 3];
    let round = 1i64 << (PRECISION_BITS - 1);
    for y in 0..mid_rows {
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

/// The size torchvision's `Resize(size)` with an int gives: the shorter side becomes `size`,
/// the longer one is scaled and truncated.
fn shorter_side_to(w: u32, h: u32, size: u32) -> (u32, u32) {
    let (w, h) = (u64::from(w.max(1)), u64::from(h.max(1)));
    let long = |a: u64, b: u64| (u64::from(size) * a / b).min(u64::from(u32::MAX)) as u32;
    let (nw, nh) = if w <= h {
        (size, long(h, w))
    } else {
        (long(w, h), size)
    };
    (nw.max(1), nh.max(1))
}

/// torchvision `Resize(size)` with an int: the shorter side becomes `size`, the longer one is
/// scaled and truncated. Allocates the whole result: for the evaluation transform use
/// [`resize_shorter_center_crop`], which does not.
pub fn resize_shorter(img: &RgbImage, size: u32) -> RgbImage {
    let (nw, nh) = shorter_side_to(img.width(), img.height(), size);
    resize(img, nw, nh)
}

/// `center_crop(&resize_shorter(img, size), crop)`, bit for bit, computing only the kept
/// `crop x crop` pixels: the working set stays bounded for any aspect ratio (a panorama or a
/// 1-pixel strip costs what a square photo does).
pub fn resize_shorter_center_crop(img: &RgbImage, size: u32, crop: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (nw, nh) = shorter_side_to(w, h, size);
    if (nw, nh) == (w, h) {
        return center_crop(img, crop);
    }
    if nw < crop || nh < crop {
        // Padded by `center_crop`; only for `size < crop`, where the resize is small anyway.
        return center_crop(&resize(img, nw, nh), crop);
    }
    let top = ((nh - crop) as f64 / 2.0).round_ties_even() as usize;
    let left = ((nw - crop) as f64 / 2.0).round_ties_even() as usize;
    let c = crop as usize;
    let box_ = [0.0, 0.0, w as f64, h as f64];
    resize_box_window(img, box_, nw, nh, left..left + c, top..top + c)
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
    let n = w as usize * h as usize;
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
}
