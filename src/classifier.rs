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

pub fn prediction(labels: &[String], probs: &[f32], threshold: f32) -> Prediction {
    let mut ranked: Vec<LabelProb> = labels
        .iter()
        .zip(probs)
        .map(|(label, &p)| LabelProb {
            label: label.clone(),
            p,
        })
        .collect();
    ranked.sort_by(|a, b| b.p.total_cmp(&a.p));
    let best = ranked.first().cloned().unwrap_or(LabelProb {
        label: UNSURE.into(),
        p: 0.0,
    });
    let unsure = best.p < threshold;
    Prediction {
        label: if unsure { UNSURE.into() } else { best.label },
        confidence: best.p,
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
}
