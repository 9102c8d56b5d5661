//! A classifier small enough for a link: its labels, backbone, preprocessing, temperature and
//! head, the head quantised to 4 bits with one scale per 64 weights, or to int8 with one scale per
//! class row, or kept as f16: the smallest that keeps the full head's predictions. The page deflates these bytes into a URL fragment (`#m=…`, which browsers
//! never send to a server) or a QR code; `decode` turns them back into a model for
//! `Session::set_model`. The backbone is named by the first 16 hex digits of its checkpoint's
//! sha256, enough to refuse other weights (`Model::check_backbone` accepts such a prefix).

use half::f16;

use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::evaluation::metrics::argmax;
use crate::formats::model_file::{self, MetaError, Model, ModelMeta, SHA_PREFIX};
use crate::preprocess::Fit;
use crate::trainer::TrainConfig;

const MAGIC: &[u8; 4] = b"SWs1";
/// Share of validation photos on which the int8 head must give the full head's top class.
pub const MIN_AGREEMENT: f64 = 0.99;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Int4,
    Int8,
    F16,
}

impl Precision {
    /// Smallest first: the order `Session::share` tries them in.
    pub const ALL: [Precision; 3] = [Precision::Int4, Precision::Int8, Precision::F16];
}

/// Weights per 4-bit scale. One scale per row lost predictions: a row's largest weight set the
/// step for all 512–2048 of them, and 15 levels left most weights at 0 or ±1.
const INT4_GROUP: usize = 64;

/// Scales tried per group, as fractions of max |w| / 7: clipping the few largest weights of a
/// group for a finer step for all the others often loses less than covering them exactly.
const INT4_SCALES: [f32; 8] = [1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65];

/// Each run of `INT4_GROUP` weights as a f16 scale and levels in -7..=7: of the scales tried,
/// the one whose levels are nearest the weights (least squared error).
fn int4_groups(weight: &[f32]) -> Vec<(f16, Vec<i8>)> {
    weight
        .chunks(INT4_GROUP)
        .map(|group| {
            let max = group.iter().fold(0f32, |m, v| m.max(v.abs()));
            let levels = |scale: f16| -> (f32, Vec<i8>) {
                let s = scale.to_f32().max(f32::MIN_POSITIVE);
                let q: Vec<i8> = group
                    .iter()
                    .map(|v| (v / s).round().clamp(-7.0, 7.0) as i8)
                    .collect();
                let err = group
                    .iter()
                    .zip(&q)
                    .map(|(v, &l)| (v - f32::from(l) * scale.to_f32()).powi(2))
                    .sum();
                (err, q)
            };
            if max == 0.0 {
                return (f16::ONE, levels(f16::ONE).1);
            }
            // Rounded to f16 first, so the levels are chosen for the scale that is stored.
            INT4_SCALES
                .iter()
                .map(|f| f16::from_f32(max / 7.0 * f))
                .map(|scale| {
                    let (err, q) = levels(scale);
                    (err, scale, q)
                })
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, scale, q)| (scale, q))
                .expect("scales to try")
        })
        .collect()
}

/// Each row of `weight` (`rows × dim`) as int8 with its own scale (max |w| / 127).
fn int8_rows(weight: &[f32], dim: usize) -> Vec<(f32, Vec<i8>)> {
    weight
        .chunks(dim)
        .map(|row| {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            (
                scale,
                row.iter()
                    .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8)
                    .collect(),
            )
        })
        .collect()
}

/// The head's weights as `precision` would give them back.
pub fn round_trip(weight: &[f32], dim: usize, precision: Precision) -> Vec<f32> {
    match precision {
        Precision::Int4 => weight
            .chunks(dim)
            .flat_map(int4_groups)
            .flat_map(|(s, q)| q.into_iter().map(move |v| f32::from(v) * s.to_f32()))
            .collect(),
        Precision::Int8 => int8_rows(weight, dim)
            .into_iter()
            .flat_map(|(s, q)| q.into_iter().map(move |v| f32::from(v) * s))
            .collect(),
        Precision::F16 => weight.iter().map(|&v| f16::from_f32(v).to_f32()).collect(),
    }
}

/// Share of `rows` (embeddings) on which the head `(weight, bias)` and the same head at
/// `precision` pick the same class; 1 without rows.
pub fn agreement(weight: &[f32], bias: &[f32], rows: &[&[f32]], precision: Precision) -> f64 {
    if rows.is_empty() || bias.is_empty() {
        return 1.0;
    }
    let dim = weight.len() / bias.len();
    let compact = round_trip(weight, dim, precision);
    let top = |w: &[f32], x: &[f32]| {
        let logits: Vec<f32> = w
            .chunks(dim)
            .zip(bias)
            .map(|(row, b)| row.iter().zip(x).map(|(a, v)| a * v).sum::<f32>() + b)
            .collect();
        argmax(&logits)
    };
    let same = rows
        .iter()
        .filter(|x| top(weight, x) == top(&compact, x))
        .count();
    same as f64 / rows.len() as f64
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = u16::try_from(s.len())
        .map_err(|_| Error::Invalid("a label is too long to share".into()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// The rule a link's classes and backbone hash follow: the model file's own
/// (`model_file::check_labels`, `check_source_sha256`), so a link is no way around it.
fn check_meta(labels: &[String], sha: &str) -> Result<(), MetaError> {
    model_file::check_source_sha256(sha)?;
    model_file::check_labels(labels)
}

/// The bytes of `model` at `precision`.
pub fn encode(model: &Model, precision: Precision) -> Result<Vec<u8>> {
    let m = &model.meta;
    let classes = u8::try_from(m.labels.len())
        .map_err(|_| Error::Invalid("more than 255 classes cannot be shared by link".into()))?;
    let sha: String = m.backbone_source_sha256.chars().take(SHA_PREFIX).collect();
    // Refused here rather than by everyone who opens the link.
    check_meta(&m.labels, &sha)
        .map_err(|e| Error::Invalid(format!("this model cannot be shared by link: {e}")))?;
    let mut out = MAGIC.to_vec();
    out.push(match precision {
        Precision::Int8 => 1,
        Precision::F16 => 2,
        Precision::Int4 => 3,
    });
    put_str(&mut out, m.arch.name())?;
    out.push(u8::from(m.fit == Fit::Letterbox));
    put_str(&mut out, &sha)?;
    out.extend_from_slice(&(m.temperature as f32).to_le_bytes());
    out.push(classes);
    for l in &m.labels {
        put_str(&mut out, l)?;
    }
    for b in &model.bias {
        out.extend_from_slice(&b.to_le_bytes());
    }
    match precision {
        // Row by row, so a row's groups sit together; two levels a byte, low nibble first.
        Precision::Int4 => {
            for row in model.weight.chunks(m.dim) {
                let groups = int4_groups(row);
                for (scale, _) in &groups {
                    out.extend_from_slice(&scale.to_le_bytes());
                }
                let levels: Vec<u8> = groups
                    .into_iter()
                    .flat_map(|(_, q)| q)
                    .map(|v| (v + 8) as u8)
                    .collect();
                out.extend(
                    levels
                        .chunks(2)
                        .map(|p| p[0] | (p.get(1).copied().unwrap_or(8) << 4)),
                );
            }
        }
        Precision::Int8 => {
            for (scale, q) in int8_rows(&model.weight, m.dim) {
                out.extend_from_slice(&scale.to_le_bytes());
                out.extend(q.into_iter().map(|v| v as u8));
            }
        }
        Precision::F16 => {
            for &v in &model.weight {
                out.extend_from_slice(&f16::from_f32(v).to_le_bytes());
            }
        }
    }
    Ok(out)
}

/// Reads the fields of a shared model in order, refusing a short or malformed one.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::Invalid(
                "the shared model is cut short (an incomplete link?)".into(),
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn str(&mut self) -> Result<String> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        String::from_utf8(self.take(len)?.to_vec())
            .map_err(|_| Error::Invalid("the shared model's text is not UTF-8".into()))
    }
}

/// The model a link holds (its head dequantised), or why the bytes are not one.
pub fn decode(bytes: &[u8]) -> Result<Model> {
    let mut r = Reader(bytes);
    if r.take(4)? != MAGIC {
        return Err(Error::Invalid("this is not a sortwise shared model".into()));
    }
    let precision = match r.u8()? {
        1 => Precision::Int8,
        2 => Precision::F16,
        3 => Precision::Int4,
        p => {
            return Err(Error::Invalid(format!(
                "unknown shared-model precision {p}"
            )));
        }
    };
    let arch: Arch = r.str()?.parse()?;
    let fit = if r.u8()? == 1 {
        Fit::Letterbox
    } else {
        Fit::Crop
    };
    let sha = r.str()?;
    let temperature = f64::from(r.f32()?);
    let classes = usize::from(r.u8()?);
    let labels = (0..classes).map(|_| r.str()).collect::<Result<Vec<_>>>()?;
    check_meta(&labels, &sha)
        .map_err(|e| Error::Invalid(format!("the shared model is not usable: {e}")))?;
    let bias = (0..classes).map(|_| r.f32()).collect::<Result<Vec<_>>>()?;
    let dim = arch.feature_dim();
    let mut weight = Vec::with_capacity(classes * dim);
    for _ in 0..classes {
        match precision {
            Precision::Int4 => {
                let scales = r.take(2 * dim.div_ceil(INT4_GROUP))?;
                let packed = r.take(dim.div_ceil(2))?;
                let levels = packed
                    .iter()
                    .flat_map(|b| [b & 15, b >> 4])
                    .take(dim)
                    .map(|v| f32::from(v as i8 - 8));
                weight.extend(levels.enumerate().map(|(i, v)| {
                    let s = &scales[2 * (i / INT4_GROUP)..][..2];
                    v * f16::from_le_bytes([s[0], s[1]]).to_f32()
                }));
            }
            Precision::Int8 => {
                let scale = r.f32()?;
                weight.extend(r.take(dim)?.iter().map(|&v| f32::from(v as i8) * scale));
            }
            Precision::F16 => {
                for c in r.take(2 * dim)?.chunks_exact(2) {
                    weight.push(f16::from_le_bytes([c[0], c[1]]).to_f32());
                }
            }
        }
    }
    if !r.0.is_empty() {
        return Err(Error::Invalid(
            "the shared model has bytes past its end".into(),
        ));
    }
    if weight.iter().chain(&bias).any(|v| !v.is_finite())
        || !(temperature > 0.0 && temperature.is_finite())
    {
        return Err(Error::Invalid(
            "the shared model holds values that are not numbers".into(),
        ));
    }
    Ok(Model {
        meta: ModelMeta {
            version: model_file::VERSION,
            arch,
            backbone_source_sha256: sha,
            labels,
            fit,
            dim,
            config: TrainConfig::default(),
            report: None,
            producer: format!("sortwise {} (shared link)", env!("CARGO_PKG_VERSION")),
            temperature,
        },
        weight,
        bias,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(classes: usize) -> Model {
        let dim = Arch::Resnet18.feature_dim();
        Model {
            meta: ModelMeta {
                version: model_file::VERSION,
                arch: Arch::Resnet18,
                backbone_source_sha256: "0123456789abcdef0123".into(),
                labels: (0..classes).map(|c| format!("类{c}")).collect(),
                fit: Fit::Letterbox,
                dim,
                config: TrainConfig::default(),
                report: None,
                producer: String::new(),
                temperature: 1.5,
            },
            weight: (0..classes * dim)
                .map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0)
                .collect(),
            bias: (0..classes).map(|c| c as f32 / 10.0).collect(),
        }
    }

    #[test]
    fn both_precisions_round_trip_within_their_step() {
        let m = model(3);
        // Weights lie in [-1, 1]: at most half a level of int8 and f16 off; 4 bits may clip a
        // group's largest weights (to 0.65 of its max) but is no further off on the whole than
        // rounding to steps of max / 7 (mean squared error step² / 12), plus f16's rounding.
        for (p, tol) in [
            (Precision::Int4, 0.35 + 2e-3),
            (Precision::Int8, 1.0 / 127.0),
            (Precision::F16, 1e-3),
        ] {
            let back = decode(&encode(&m, p).unwrap()).unwrap();
            assert_eq!(back.meta.labels, m.meta.labels);
            assert_eq!(
                (back.meta.arch, back.meta.fit),
                (Arch::Resnet18, Fit::Letterbox)
            );
            assert_eq!(back.meta.backbone_source_sha256, "0123456789abcdef");
            assert_eq!(back.meta.temperature, 1.5);
            assert_eq!(back.bias, m.bias);
            let d = back
                .weight
                .iter()
                .zip(&m.weight)
                .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
            assert!(d <= tol, "{p:?}: {d}");
            let mse = back
                .weight
                .iter()
                .zip(&m.weight)
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f32>()
                / m.weight.len() as f32;
            assert!(mse <= 1.02 * (1.0f32 / 7.0).powi(2) / 12.0, "{p:?}: {mse}");
            assert_eq!(back.weight, round_trip(&m.weight, m.meta.dim, p));
        }
        // The prefix is enough to pair the model with its backbone, and refuses another.
        let back = decode(&encode(&m, Precision::Int8).unwrap()).unwrap();
        assert!(
            back.check_backbone(Arch::Resnet18, "0123456789abcdef0123")
                .is_ok()
        );
        assert!(
            back.check_backbone(Arch::Resnet18, "f123456789abcdef0123")
                .is_err()
        );
    }

    #[test]
    fn each_precision_has_its_size() {
        // ResNet-18, 4 classes: the header (magic, precision, arch, fit, hash, temperature,
        // labels, biases) plus per row 8 f16 scales + 256 bytes, 4 + 512, or 1024.
        let m = model(4);
        let header = encode(&m, Precision::F16).unwrap().len() - 4 * 512 * 2;
        for (p, row) in [
            (Precision::Int4, 8 * 2 + 256),
            (Precision::Int8, 4 + 512),
            (Precision::F16, 1024),
        ] {
            assert_eq!(encode(&m, p).unwrap().len(), header + 4 * row, "{p:?}");
        }
        assert_eq!(
            header,
            4 + 1 + (2 + 8) + 1 + (2 + 16) + 4 + 1 + 4 * (2 + 4) + 4 * 4
        );
    }

    /// Link bytes written by hand (f16, ResNet-18), for what `encode` itself refuses to write.
    fn link(labels: &[&str], sha: &str) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(2);
        put_str(&mut out, "resnet18").unwrap();
        out.push(0);
        put_str(&mut out, sha).unwrap();
        out.extend_from_slice(&1f32.to_le_bytes());
        out.push(labels.len() as u8);
        for l in labels {
            put_str(&mut out, l).unwrap();
        }
        for _ in 0..labels.len() {
            out.extend_from_slice(&0f32.to_le_bytes());
        }
        let one = f16::from_f32(0.5).to_le_bytes();
        for _ in 0..labels.len() * 512 {
            out.extend_from_slice(&one);
        }
        out
    }

    #[test]
    fn links_follow_the_model_files_label_and_hash_rule() {
        let sha = "0123456789abcdef";
        assert_eq!(
            decode(&link(&["glass", "有害垃圾 🔋"], sha))
                .unwrap()
                .meta
                .labels,
            ["glass", "有害垃圾 🔋"]
        );
        let long = "x".repeat(usize::from(u16::MAX));
        for (labels, sha, expected) in [
            (vec![], sha, "fewer than two classes (0)"),
            (vec!["glass"], sha, "fewer than two classes (1)"),
            (
                vec!["glass", "paper", "glass"],
                sha,
                "class name 'glass' appears twice",
            ),
            (
                vec!["glass", "pa\u{1b}[31mper"],
                sha,
                "class name 1 ('pa\\u{1b}[31mper') is refused: a class name cannot contain \
                 control characters",
            ),
            (
                vec!["glass", &long],
                sha,
                "class name 1 is 65535 bytes long",
            ),
            (
                vec!["\u{202E}ssalg", "paper"],
                sha,
                "a class name cannot contain the text-direction control U+202E",
            ),
            (
                vec!["glass", "gla\u{200B}ss"],
                sha,
                "a class name cannot contain the invisible character U+200B",
            ),
            (
                vec!["glass", "paper "],
                sha,
                "class name 1 ('paper ') has surrounding spaces",
            ),
            (
                vec!["glass", "paper"],
                "",
                "its backbone source sha256 is empty",
            ),
            (
                vec!["glass", "paper"],
                "0123456789ABCDEF",
                "('0123456789ABCDEF') is not 16 to 64 lowercase hex digits",
            ),
            (
                vec!["glass", "paper"],
                "0123",
                "not 16 to 64 lowercase hex digits",
            ),
        ] {
            let e = decode(&link(&labels, sha)).unwrap_err().to_string();
            assert!(
                e.starts_with("the shared model is not usable: ") && e.contains(expected),
                "{labels:?} {sha:?}: {e}"
            );
        }
    }

    #[test]
    fn links_no_one_could_open_are_not_made() {
        for (change, expected) in [
            (
                (|m: &mut ModelMeta| m.backbone_source_sha256 = "test-source".into())
                    as fn(&mut ModelMeta),
                "its backbone source sha256 ('test-source') is not 16 to 64",
            ),
            (
                |m: &mut ModelMeta| m.labels[1] = "类\u{2067}".into(),
                "text-direction control U+2067",
            ),
        ] {
            let mut m = model(2);
            change(&mut m.meta);
            for p in Precision::ALL {
                let e = encode(&m, p).unwrap_err().to_string();
                assert!(
                    e.starts_with("this model cannot be shared by link: ") && e.contains(expected),
                    "{p:?}: {e}"
                );
            }
        }
    }

    #[test]
    fn every_cut_and_flipped_byte_is_refused_or_read_without_panic() {
        for p in Precision::ALL {
            let bytes = encode(&model(2), p).unwrap();
            for n in 0..bytes.len() {
                assert!(decode(&bytes[..n]).is_err(), "{p:?} cut at {n}");
            }
            for i in 0..bytes.len().min(200) {
                let mut b = bytes.clone();
                b[i] ^= 0xA5;
                let _ = decode(&b);
            }
        }
    }
}
