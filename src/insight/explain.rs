//! Why the model decided: class activation maps (Zhou et al., "Learning Deep Features for
//! Discriminative Localization", CVPR 2016), exact here rather than approximate. The head is
//! linear on the mean over positions of the last feature map F (`[C, 7, 7]`), so with
//! `M_c(x, y) = Σ_k w_ck · F_k(x, y)` the logit of class c is exactly `mean_xy M_c + b_c`: the
//! map says how much each part of the photo added to each class's score, in the logit's units.

use image::{Rgb, RgbImage};
use serde::Serialize;

use crate::preprocess::{CROP, Fit, RESIZE};

/// Colour-map stops from low to high (Google's Turbo, sampled): the page's legend and overlay use
/// these too (`session::rules`).
pub const COLORS: [[u8; 3]; 6] = [
    [48, 18, 59],
    [65, 125, 243],
    [34, 220, 186],
    [164, 252, 60],
    [250, 156, 35],
    [122, 4, 3],
];

/// Every class's map over the photo, from one forward pass.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Heatmap {
    pub width: usize,
    pub height: usize,
    /// Per class, in the model's label order: `height × width` values, row-major, in logit
    /// units without the bias.
    pub maps: Vec<Vec<f32>>,
    /// Where the map lies on the photo: `[left, top, right, bottom]` as fractions of its width and
    /// height (the centre crop lies inside the photo; a letterbox reaches past its shorter sides).
    pub region: [f32; 4],
}

/// The class maps of one flattened `[C, H, W]` feature map under a head of PyTorch layout
/// (`weight` `[classes, C]` row-major); `None` when the sizes do not fit.
pub fn class_maps(feature_map: &[f32], weight: &[f32], classes: usize) -> Option<Vec<Vec<f32>>> {
    let channels = weight.len().checked_div(classes)?;
    let positions = feature_map.len().checked_div(channels)?;
    if classes == 0
        || channels * classes != weight.len()
        || positions * channels != feature_map.len()
    {
        return None;
    }
    Some(
        weight
            .chunks(channels)
            .map(|w| {
                let mut m = vec![0f32; positions];
                for (k, &wk) in w.iter().enumerate() {
                    let plane = &feature_map[k * positions..(k + 1) * positions];
                    for (acc, &f) in m.iter_mut().zip(plane) {
                        *acc += wk * f;
                    }
                }
                m
            })
            .collect(),
    )
}

/// The logits the maps add up to: `mean_xy M_c + b_c`.
pub fn logits(maps: &[Vec<f32>], bias: &[f32]) -> Vec<f32> {
    maps.iter()
        .zip(bias)
        .map(|(m, b)| {
            m.iter().map(|&v| f64::from(v)).sum::<f64>() as f32 / m.len().max(1) as f32 + b
        })
        .collect()
}

/// The part of a `width × height` photo the network saw, as fractions (see [`Heatmap::region`]).
pub fn region(fit: Fit, width: u32, height: u32) -> [f32; 4] {
    let (w, h) = (width as f32, height as f32);
    // Crop: the shorter side resized to 256 and the centre 224 kept; letterbox: the longer side
    // fitted to 224 and the square padded.
    let side = match fit {
        Fit::Crop => w.min(h) * CROP as f32 / RESIZE as f32,
        Fit::Letterbox => w.max(h),
    };
    let (x0, y0) = ((w - side) / 2.0, (h - side) / 2.0);
    [x0 / w, y0 / h, (x0 + side) / w, (y0 + side) / h]
}

/// The colour of `t` in [0, 1] on [`COLORS`].
pub fn color(t: f32) -> [u8; 3] {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (COLORS.len() - 1) as f32;
    let i = (x as usize).min(COLORS.len() - 2);
    let f = x - i as f32;
    let (a, b) = (COLORS[i], COLORS[i + 1]);
    [0, 1, 2].map(|c| (a[c] as f32 + (b[c] as f32 - a[c] as f32) * f).round() as u8)
}

/// `map` (`width × height`, any units) scaled to [0, 1] by its own minimum and maximum.
pub fn normalized(map: &[f32]) -> Vec<f32> {
    let (lo, hi) = map
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let span = hi - lo;
    map.iter()
        .map(|&v| if span > 0.0 { (v - lo) / span } else { 0.5 })
        .collect()
}

/// `img` with `map` laid over its `region` in colour at `opacity` (bilinear between the map's
/// cell centres), for `sortwise explain --out`.
pub fn overlay(
    img: &RgbImage,
    map: &[f32],
    width: usize,
    height: usize,
    region: [f32; 4],
    opacity: f32,
) -> RgbImage {
    let t = normalized(map);
    let (iw, ih) = img.dimensions();
    let a = opacity.clamp(0.0, 1.0);
    let at = |x: isize, y: isize| {
        t[(y.clamp(0, height as isize - 1) as usize) * width
            + x.clamp(0, width as isize - 1) as usize]
    };
    let mut out = img.clone();
    for (px, py, p) in out.enumerate_pixels_mut() {
        // Pixel centre in map cells (cell centres at integer + 0.5).
        let u = ((px as f32 + 0.5) / iw as f32 - region[0]) / (region[2] - region[0]);
        let v = ((py as f32 + 0.5) / ih as f32 - region[1]) / (region[3] - region[1]);
        if !(0.0..=1.0).contains(&u) || !(0.0..=1.0).contains(&v) {
            continue;
        }
        let (gx, gy) = (u * width as f32 - 0.5, v * height as f32 - 0.5);
        let (x0, y0) = (gx.floor() as isize, gy.floor() as isize);
        let (fx, fy) = (gx - x0 as f32, gy - y0 as f32);
        let value = at(x0, y0) * (1.0 - fx) * (1.0 - fy)
            + at(x0 + 1, y0) * fx * (1.0 - fy)
            + at(x0, y0 + 1) * (1.0 - fx) * fy
            + at(x0 + 1, y0 + 1) * fx * fy;
        let c = color(value);
        *p = Rgb([0, 1, 2].map(|i| (p[i] as f32 * (1.0 - a) + c[i] as f32 * a).round() as u8));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_add_up_to_the_logits() {
        // Two channels over 2×2 positions, three classes.
        let f = [1.0, 2.0, 3.0, 4.0, 0.5, 0.5, -1.0, 1.0];
        let w = [1.0, 0.0, 0.0, 2.0, 1.0, -1.0];
        let maps = class_maps(&f, &w, 3).unwrap();
        assert_eq!(maps[0], vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(maps[1], vec![1.0, 1.0, -2.0, 2.0]);
        assert_eq!(maps[2], vec![0.5, 1.5, 4.0, 3.0]);
        // The head on the pooled features: mean F = [2.5, 0.25].
        let pooled = [2.5f32, 0.25];
        let b = [0.1, -0.2, 0.3];
        let direct: Vec<f32> = w
            .chunks(2)
            .zip(b)
            .map(|(w, b)| w[0] * pooled[0] + w[1] * pooled[1] + b)
            .collect();
        let from_maps = logits(&maps, &b);
        for (a, b) in direct.iter().zip(&from_maps) {
            assert!((a - b).abs() < 1e-6, "{direct:?} vs {from_maps:?}");
        }
        assert!(class_maps(&f, &w[..5], 3).is_none());
        assert!(class_maps(&f[..7], &w, 3).is_none());
    }

    #[test]
    fn regions_and_colours() {
        // A 400×300 crop sees the centre 262.5 px square; a letterbox the 400 px square.
        let r = region(Fit::Crop, 400, 300);
        assert!((r[0] - 68.75 / 400.0).abs() < 1e-6 && (r[1] - 18.75 / 300.0).abs() < 1e-6);
        let l = region(Fit::Letterbox, 400, 300);
        assert_eq!(l[0], 0.0);
        assert!((l[1] + 50.0 / 300.0).abs() < 1e-6 && (l[3] - 350.0 / 300.0).abs() < 1e-6);
        assert_eq!(color(0.0), COLORS[0]);
        assert_eq!(color(1.0), COLORS[5]);
        assert_eq!(color(f32::NAN), COLORS[0]);
        assert_eq!(normalized(&[2.0, 4.0, 3.0]), vec![0.0, 1.0, 0.5]);
        assert_eq!(normalized(&[1.0, 1.0]), vec![0.5, 0.5]);
        // Opacity 0 leaves the photo as it was; 1 paints the hottest cell in the top colour.
        let img = RgbImage::from_pixel(8, 8, Rgb([10, 20, 30]));
        let map = [0.0, 0.0, 0.0, 1.0];
        assert_eq!(overlay(&img, &map, 2, 2, [0.0, 0.0, 1.0, 1.0], 0.0), img);
        let hot = overlay(&img, &map, 2, 2, [0.0, 0.0, 1.0, 1.0], 1.0);
        assert_eq!(hot.get_pixel(7, 7).0, COLORS[5]);
        assert_eq!(hot.get_pixel(0, 0).0, COLORS[0]);
    }
}
