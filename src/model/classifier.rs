//! Turning head probabilities into what a person sees, including "unsure".

use serde::{Deserialize, Serialize};

/// Shown instead of a class when the best probability is under the threshold.
pub const UNSURE: &str = "unsure";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelProb {
    pub label: String,
    pub p: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The best class, or [`UNSURE`] when its probability is below the threshold.
    pub label: String,
    pub confidence: f32,
    pub unsure: bool,
    /// All classes, most likely first.
    pub probs: Vec<LabelProb>,
}

/// The ranked prediction. Probabilities that are not finite numbers (a NaN from a
/// damaged model or input) make it "unsure" with confidence 0 whatever the threshold: `NaN <
/// threshold` is false, and `total_cmp` ranks NaN above every number, so they would otherwise
/// come out as a confident label. They are shown as 0 (JSON has no NaN).
pub fn prediction(labels: &[String], probs: &[f32], threshold: f32) -> Prediction {
    let broken = probs.len() != labels.len() || probs.iter().any(|p| !p.is_finite());
    let mut ranked: Vec<LabelProb> = labels
        .iter()
        .zip(probs)
        .map(|(label, &p)| LabelProb {
            label: label.clone(),
            p: if p.is_finite() { p } else { 0.0 },
        })
        .collect();
    ranked.sort_by(|a, b| b.p.total_cmp(&a.p));
    let best = ranked.first().cloned().unwrap_or(LabelProb {
        label: UNSURE.into(),
        p: 0.0,
    });
    let unsure = broken || threshold.is_nan() || best.p < threshold;
    Prediction {
        label: if unsure { UNSURE.into() } else { best.label },
        confidence: if broken { 0.0 } else { best.p },
        unsure,
        probs: ranked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_thresholds() {
        let labels = vec![
            "glass".to_string(),
            "metal".to_string(),
            "paper".to_string(),
        ];
        let p = prediction(&labels, &[0.2, 0.5, 0.3], 0.0);
        assert_eq!(p.label, "metal");
        assert!(!p.unsure);
        assert_eq!(
            p.probs.iter().map(|l| l.label.as_str()).collect::<Vec<_>>(),
            ["metal", "paper", "glass"]
        );
        let p = prediction(&labels, &[0.2, 0.5, 0.3], 0.6);
        assert_eq!(p.label, UNSURE);
        assert!(p.unsure);
        assert_eq!(p.confidence, 0.5);
    }

    #[test]
    fn non_finite_probabilities_are_never_a_confident_label() {
        let labels = vec!["glass".to_string(), "metal".to_string()];
        for probs in [
            [f32::NAN, 0.4],
            [f32::NAN, f32::NAN],
            [f32::INFINITY, 0.0],
            [0.9, f32::NEG_INFINITY],
        ] {
            let p = prediction(&labels, &probs, 0.0);
            assert!(p.unsure, "{probs:?}");
            assert_eq!(p.label, UNSURE);
            assert_eq!(p.confidence, 0.0);
            assert!(p.probs.iter().all(|l| l.p.is_finite()), "{:?}", p.probs);
        }
        // Fewer probabilities than labels (a head that does not fit) is unsure too.
        assert!(prediction(&labels, &[1.0], 0.0).unsure);
        assert!(prediction(&labels, &[0.3, 0.7], f32::NAN).unsure);
        assert!(!prediction(&labels, &[0.3, 0.7], 0.5).unsure);
    }
}
