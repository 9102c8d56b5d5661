//! Seeded, stratified train/validation split.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Indices into `labels` for training and validation. Each class with at least two examples
/// puts at least one in validation and keeps at least one for training; a class with one
/// example trains on it.
pub fn stratified(
    labels: &[usize],
    classes: usize,
    fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut train = Vec::new();
    let mut val = Vec::new();
    for class in 0..classes {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        idx.shuffle(&mut rng);
        let n = idx.len();
        let n_val = if n >= 2 && fraction > 0.0 {
            ((n as f64 * fraction).round() as usize).clamp(1, n - 1)
        } else {
            0
        };
        val.extend_from_slice(&idx[..n_val]);
        train.extend_from_slice(&idx[n_val..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_seeded_and_complete() {
        let labels: Vec<usize> = (0..100).map(|i| if i < 80 { 0 } else { 1 }).collect();
        let (train, val) = stratified(&labels, 2, 0.2, 1);
        assert_eq!(val.iter().filter(|&&i| labels[i] == 0).count(), 16);
        assert_eq!(val.iter().filter(|&&i| labels[i] == 1).count(), 4);
        let mut all: Vec<usize> = train.iter().chain(&val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(stratified(&labels, 2, 0.2, 1), (train.clone(), val.clone()));
        assert_ne!(stratified(&labels, 2, 0.2, 2).1, val);
    }

    #[test]
    fn tiny_classes() {
        // 1 image: train only; 2 images: one each way.
        let (train, val) = stratified(&[0, 1, 1], 2, 0.2, 0);
        assert_eq!(train.len(), 2);
        assert_eq!(val.len(), 1);
        assert_eq!(stratified(&[0, 1, 1], 2, 0.0, 0).1.len(), 0);
    }
}
