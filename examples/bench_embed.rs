//! Native embedding throughput for bench/run.sh (issue 7), through the library's public API the
//! way the browser uses it: `Backbone::init` + `fold_batchnorm`, then `infer::run` on batches of
//! preprocessed 224x224 inputs. Random weights (throughput does not depend on them).
//!
//! ```sh
//! cargo run --release --example bench_embed -- [--backend cpu|wgpu|wgpu-any] [--archs resnet18,resnet50,efficientnet_lite0]
//!     [--batch 16] [--runs 5] [--batch1] [--write-weights bench/.cache]
//! ```
//!
//! Prints one JSON line per arch on stdout:
//! `{"arch","backend","batch","img_s","median_s","runs_s","batch1_s"?}`, or
//! `{"backend","error"}` when the backend is unavailable (`wgpu`: no hardware adapter).
//! `--batch1` also times a single-image forward (median of `runs`), to see what batching buys.
//! `--write-weights DIR` writes random-weight web files (`<arch>-random.safetensors`, f16) for the
//! browser benchmark and prints `{"weights": {arch, dtype, bytes}}` lines for f16 and f32.

use std::time::Instant;

use sortwise::arch::Arch;
use sortwise::backbone::Backbone;
use sortwise::device::{self, BackendChoice};
use sortwise::formats::weights::{self, StorageDtype};
use sortwise::model::infer::{self, Output};

struct Opts {
    /// `cpu`, `wgpu` (hardware adapters only, as `auto` picks them) or `wgpu-any` (whatever
    /// adapter wgpu offers, software ones included).
    backend: String,
    archs: Vec<Arch>,
    batch: usize,
    runs: usize,
    batch1: bool,
    write_weights: Option<std::path::PathBuf>,
}

fn parse_arch(s: &str) -> Arch {
    Arch::ALL
        .into_iter()
        .find(|a| a.name() == s)
        .unwrap_or_else(|| panic!("unknown arch {s}"))
}

fn parse() -> Opts {
    let mut o = Opts {
        backend: "cpu".into(),
        archs: vec![Arch::Resnet18, Arch::Resnet50, Arch::EfficientnetLite0],
        batch: infer::DEFAULT_BATCH,
        runs: 5,
        batch1: false,
        write_weights: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--backend" => o.backend = val(),
            "--archs" => o.archs = val().split(',').map(parse_arch).collect(),
            "--batch" => o.batch = val().parse().expect("batch"),
            "--runs" => o.runs = val().parse().expect("runs"),
            "--batch1" => o.batch1 = true,
            "--write-weights" => o.write_weights = Some(val().into()),
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// Seconds per call of `infer::run` on `n` inputs: one warm-up, then `runs` timed calls.
fn time_runs(backbone: &Backbone, inputs: &[Vec<f32>], runs: usize) -> Vec<f64> {
    let once = || {
        let rows = pollster::block_on(infer::run(backbone, inputs, Output::Features, inputs.len()))
            .expect("forward");
        assert_eq!(rows.len(), inputs.len());
    };
    once();
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            once();
            t.elapsed().as_secs_f64()
        })
        .collect()
}

fn main() {
    // As the CLI does: without it, glibc returns each layer's activations to the kernel.
    sortwise::allocator::keep_freed_memory();
    let o = parse();
    if let Some(dir) = &o.write_weights {
        std::fs::create_dir_all(dir).expect("create weights dir");
        let cpu = device::cpu("weights");
        for arch in [Arch::Resnet18, Arch::Resnet50, Arch::EfficientnetLite0] {
            let b = Backbone::init(arch, &cpu.device);
            for dtype in [StorageDtype::F16, StorageDtype::F32] {
                let bytes = weights::save_web(&b, dtype, "random-bench").expect("save_web");
                println!(
                    "{}",
                    serde_json::json!({"weights": {"arch": arch.name(), "dtype": dtype.name(), "bytes": bytes.len()}})
                );
                // The browser loads f16 files; Lite0's real weights are in www/weights/.
                if dtype == StorageDtype::F16 && arch != Arch::EfficientnetLite0 {
                    let path = dir.join(format!("{}-random.safetensors", arch.name()));
                    std::fs::write(&path, &bytes).expect("write weights");
                }
            }
        }
    }

    let choice = match o.backend.as_str() {
        "cpu" => BackendChoice::Cpu,
        // `auto` tries discrete then integrated GPUs only, and falls back to the CPU.
        "wgpu" => BackendChoice::Auto,
        "wgpu-any" => BackendChoice::Wgpu,
        other => panic!("unknown backend {other}"),
    };
    let sel = match device::select(choice) {
        Ok(s) if o.backend == "wgpu" && s.backend != sortwise::device::Backend::Gpu => {
            println!(
                "{}",
                serde_json::json!({"backend": "wgpu", "error": format!("no hardware adapter ({})", s.reason)})
            );
            return;
        }
        Ok(s) => s,
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({"backend": o.backend, "error": e.to_string()})
            );
            return;
        }
    };
    eprintln!("backend {}: {}", sel.backend, sel.reason);
    let side = Arch::EfficientnetLite0.input_size();
    let per = 3 * side * side;
    // Deterministic, image-like values (roughly unit scale, as after normalisation).
    let input = |i: usize| -> Vec<f32> {
        (0..per)
            .map(|j| (((i * per + j) as f32) * 0.618_034).fract() * 4.0 - 2.0)
            .collect()
    };
    let batch: Vec<Vec<f32>> = (0..o.batch).map(input).collect();
    for arch in &o.archs {
        let backbone = Backbone::init(*arch, &sel.device).fold_batchnorm();
        let runs = time_runs(&backbone, &batch, o.runs);
        let med = median(&runs);
        let mut out = serde_json::json!({
            "arch": arch.name(), "backend": sel.backend, "batch": o.batch,
            "img_s": o.batch as f64 / med, "median_s": med, "runs_s": runs,
        });
        if o.batch1 {
            out["batch1_s"] = median(&time_runs(&backbone, &batch[..1], o.runs)).into();
        }
        eprintln!(
            "sortwise {} {}: {:.1} img/s",
            sel.backend,
            arch.name(),
            o.batch as f64 / med
        );
        println!("{out}");
    }
}
