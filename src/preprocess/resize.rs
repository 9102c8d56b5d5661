//! Pillow's `ImagingResample` (bilinear, antialiased), and the crops and letterbox built on it.

use std::ops::Range;

use image::RgbImage;

use super::MEAN;

/// Pillow's bilinear filter ("triangle"), support 1.
pub(super) fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

pub(super) const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Fixed-point resampling coefficients for one axis: `(first source index, weights)` per output
/// pixel in `outputs` (of `out_size`), as Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`.
/// `start..end` is the source box (a crop) along this axis. Each output pixel's coefficients
/// depend only on its own index, so a range gives exactly those pixels of the full resize.
pub(super) fn coefficients(
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

/// Pillow's 8-bit rounding of a fixed-point sum. Its sums are `INT32`, as here: the weights are
/// never negative and sum to about 2^22, so a sum stays below 255 · 2^22 + 2^21 < 2^31.
pub(super) fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One axis's [`coefficients`] flat, without a vector per output pixel: output `i` sums
/// `len[i]` source pixels from `first[i]`, weighted by `weights[i * stride..]`.
struct Taps {
    first: Vec<usize>,
    len: Vec<usize>,
    stride: usize,
    weights: Vec<i32>,
}

impl Taps {
    fn new(coefficients: Vec<(usize, Vec<i32>)>) -> Taps {
        let stride = coefficients.iter().map(|c| c.1.len()).max().unwrap_or(0);
        let mut weights = vec![0; coefficients.len() * stride];
        for (i, (_, ks)) in coefficients.iter().enumerate() {
            weights[i * stride..i * stride + ks.len()].copy_from_slice(ks);
        }
        Taps {
            first: coefficients.iter().map(|c| c.0).collect(),
            len: coefficients.iter().map(|c| c.1.len()).collect(),
            stride,
            weights,
        }
    }

    fn outputs(&self) -> usize {
        self.first.len()
    }

    /// `(first source pixel, weights)` of output `i`.
    fn of(&self, i: usize) -> (usize, &[i32]) {
        let w = &self.weights[i * self.stride..];
        (self.first[i], &w[..self.len[i]])
    }
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
///
/// Every live frame and every added photo passes through here before the backbone, on one
/// thread: the sums are Pillow's, but the vertical pass runs along whole rows (one weight
/// times a row of bytes, which compiles to SIMD) and the horizontal one sums a pixel's three
/// channels together.
pub(super) fn resize_box_window(
    img: &RgbImage,
    box_: [f64; 4],
    out_w: u32,
    out_h: u32,
    cols: Range<usize>,
    rows: Range<usize>,
) -> RgbImage {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let [left, top, right, bottom] = box_;
    let hcoef = Taps::new(coefficients(left, right, in_w, out_w as usize, cols));
    let vcoef = Taps::new(coefficients(top, bottom, in_h, out_h as usize, rows));
    let (out_w, out_h) = (hcoef.outputs(), vcoef.outputs());
    // Horizontal pass only over the rows the vertical pass reads, as Pillow does.
    let ymin = if out_h > 0 { vcoef.of(0).0 } else { 0 };
    let ymax = if out_h > 0 {
        let (first, ks) = vcoef.of(out_h - 1);
        first + ks.len()
    } else {
        0
    }
    .max(ymin);
    let mid_rows = ymax - ymin;
    let src = img.as_raw();
    let width = out_w * 3;
    let mut mid = vec![0u8; mid_rows * width];
    let round = 1i32 << (PRECISION_BITS - 1);
    for (y, mid_row) in mid.chunks_exact_mut(width.max(1)).enumerate() {
        let row = &src[(y + ymin) * in_w * 3..(y + ymin + 1) * in_w * 3];
        for (xx, out) in mid_row.chunks_exact_mut(3).enumerate() {
            let (xmin, ks) = hcoef.of(xx);
            let taps = &row[xmin * 3..(xmin + ks.len()) * 3];
            let mut ss = [round; 3];
            for (k, px) in ks.iter().zip(taps.chunks_exact(3)) {
                ss[0] += i32::from(px[0]) * k;
                ss[1] += i32::from(px[1]) * k;
                ss[2] += i32::from(px[2]) * k;
            }
            out.copy_from_slice(&ss.map(clip8));
        }
    }
    let mut out = vec![0u8; out_h * width];
    let mut ss = vec![0i32; width];
    for (yy, out_row) in out.chunks_exact_mut(width.max(1)).enumerate() {
        let (first, ks) = vcoef.of(yy);
        ss.fill(round);
        for (i, &k) in ks.iter().enumerate() {
            let base = (first - ymin + i) * width;
            for (s, &v) in ss.iter_mut().zip(&mid[base..base + width]) {
                *s += i32::from(v) * k;
            }
        }
        for (o, &s) in out_row.iter_mut().zip(&ss) {
            *o = clip8(s);
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
pub(super) fn shorter_side_to(w: u32, h: u32, size: u32) -> (u32, u32) {
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
