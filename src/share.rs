//! A classifier small enough for a link: its labels, backbone, preprocessing, temperature and
//! head, the head quantised to int8 with one scale per class row (or kept as f16 where int8 would
//! change predictions). The page deflates these bytes into a URL fragment (`#m=…`, which browsers
//! never send to a server) or a QR code; `decode` turns them back into a model for
//! `Session::set_model`. The backbone is named by the first 16 hex digits of its checkpoint's
//! sha256, enough to refuse other weights (`Model::check_backbone` accepts such a prefix).

use half::f16;

use crate::arch::Arch;
use crate::error::{Error, Result};
use crate::metrics::argmax;
use crate::model_file::{self, Model, ModelMeta};
use crate::preprocess::Fit;
use crate::trainer::TrainConfig;

const MAGIC: &[u8; 4] = b"SWs1";
/// Hex digits of the backbone's checkpoint hash kept.
pub const SHA_PREFIX: usize = 16;
/// Share of validation photos on which the int8 head must give the full head's top class.
pub const MIN_AGREEMENT: f64 = 0.99;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Int8,
    F16,
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

/// The bytes of `model` at `precision`.
pub fn encode(model: &Model, precision: Precision) -> Result<Vec<u8>> {
    let m = &model.meta;
    let classes = u8::try_from(m.labels.len())
        .map_err(|_| Error::Invalid("more than 255 classes cannot be shared by link".into()))?;
    let mut out = MAGIC.to_vec();
    out.push(match precision {
        Precision::Int8 => 1,
        Precision::F16 => 2,
    });
    put_str(&mut out, m.arch.name())?;
    out.push(u8::from(m.fit == Fit::Letterbox));
    let sha: String = m.backbone_source_sha256.chars().take(SHA_PREFIX).collect();
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
    let bias = (0..classes).map(|_| r.f32()).collect::<Result<Vec<_>>>()?;
    let dim = arch.feature_dim();
    let mut weight = Vec::with_capacity(classes * dim);
    for _ in 0..classes {
        match precision {
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
        for (p, tol) in [(Precision::Int8, 1.0 / 127.0), (Precision::F16, 1e-3)] {
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
    fn every_cut_and_flipped_byte_is_refused_or_read_without_panic() {
        let bytes = encode(&model(2), Precision::Int8).unwrap();
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "cut at {n}");
        }
        for i in 0..bytes.len().min(200) {
            let mut b = bytes.clone();
            b[i] ^= 0xA5;
            let _ = decode(&b);
        }
    }
}
