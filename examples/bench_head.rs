//! Head training time on cached embeddings (issue 7: 100 epochs over 1,000 embeddings), natively,
//! on the same synthetic clusters as bench/browser-worker.js: to profile the training loop
//! without a browser. `RAYON_NUM_THREADS=1` mimics the single-threaded wasm build.
//!
//! ```sh
//! cargo run --release --example bench_head -- [--dim 1280] [--n 1000] [--classes 4] [--epochs 100] [--runs 3]
//!     [--backend cpu|wgpu]
//! ```
//!
//! Prints one JSON line: `{"backend","dim","n","classes","epochs","runs_s","median_s","val_accuracy"}`,
//! or `{"backend","error"}` when `wgpu` finds no adapter (bench/gpu.sh runs both on one machine).

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sortwise::trainer::{self, TrainConfig, TrainExample, ValExample};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn backend() -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--backend")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "cpu".into())
}

fn main() {
    let backend = backend();
    let choice = match backend.as_str() {
        "cpu" => sortwise::device::BackendChoice::Cpu,
        "wgpu" => sortwise::device::BackendChoice::Wgpu,
        other => panic!("unknown backend {other}"),
    };
    let device = match sortwise::device::select(choice) {
        Ok(sel) => sel.device,
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({"backend": backend, "error": e.to_string()})
            );
            return;
        }
    };
    let (dim, n, classes) = (arg("--dim", 1280), arg("--n", 1000), arg("--classes", 4));
    let (epochs, runs) = (arg("--epochs", 100), arg("--runs", 3));
    let mut rng = StdRng::seed_from_u64(1);
    let centres: Vec<Vec<f32>> = (0..classes)
        .map(|_| {
            (0..dim)
                .map(|_| rng.random_range(-1.0..1.0f32) * 2.0)
                .collect()
        })
        .collect();
    let examples: Vec<(Vec<Vec<f32>>, usize)> = (0..n)
        .map(|i| {
            let c = i % classes;
            let e = centres[c]
                .iter()
                .map(|x| x + rng.random_range(-1.0..1.0f32) * 4.0)
                .collect();
            (vec![e], c)
        })
        .collect();
    let labels: Vec<String> = (0..classes).map(|c| format!("class{c}")).collect();
    let val_n = n / 5;
    let train_set: Vec<TrainExample> = examples[val_n..]
        .iter()
        .map(|(views, label)| TrainExample {
            views,
            label: *label,
        })
        .collect();
    let val_set: Vec<ValExample> = examples[..val_n]
        .iter()
        .enumerate()
        .map(|(i, (views, label))| ValExample {
            embedding: &views[0],
            label: *label,
            id: i as u32,
        })
        .collect();
    let cfg = TrainConfig {
        epochs,
        patience: 0,
        ..TrainConfig::default()
    };
    let mut times = Vec::new();
    let mut accuracy = None;
    for _ in 0..runs {
        let t = Instant::now();
        let (_, report) = pollster::block_on(trainer::train(
            &labels,
            &train_set,
            &val_set,
            &cfg,
            &device,
            &mut async |_| true,
        ))
        .expect("training");
        times.push(t.elapsed().as_secs_f64());
        accuracy = report.val_accuracy;
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{{\"backend\":\"{backend}\",\"dim\":{dim},\"n\":{n},\"classes\":{classes},\"epochs\":{epochs},\"runs_s\":{times:?},\"median_s\":{},\"val_accuracy\":{}}}",
        sorted[sorted.len() / 2],
        accuracy.unwrap_or(f64::NAN)
    );
}
