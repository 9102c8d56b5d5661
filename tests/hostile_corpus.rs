//! The hostile corpus (`tests/corpus`), natively. Each case runs through the CLI in a process of
//! its own, next to a normal photo in the same call, and must: not panic (exit 101) or be
//! killed, finish in bounded time, stay within its peak-memory allowance above a normal photo's
//! (`VmHWM` of that process, followed while it runs), say what is wrong in
//! its message, and leave the other photo of the call embedded. The same cases also go through
//! the library in this process, where a panic is caught and named.
#![cfg(all(feature = "cli", target_os = "linux"))]

mod corpus;

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use corpus::{Case, Expect};
use serde_json::Value;
use sortwise::Arch;
use sortwise::backbone::Backbone;
use sortwise::formats::model_file::Model;
use sortwise::formats::weights;
use sortwise::preprocess::{self, Fit};

/// Wall-clock limit per case. A normal photo takes well under a second here; the 1x10000
/// strip took 15 s and 2 GB before its resize was bounded.
const CASE_SECONDS: f64 = 60.0;
const SOURCE_SHA: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    peak_mib: f64,
    seconds: f64,
}

/// `VmHWM` (peak resident set of the process's current image) from /proc, in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs the CLI and follows its peak resident set (`VmHWM`, polled every 2 ms until it exits;
/// `ru_maxrss` would include the forked copy of this big test process); kills it past
/// `CASE_SECONDS` (reported as exit code 137).
fn sortwise(args: &[&str]) -> Run {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sortwise"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sortwise");
    let pid = child.id();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            r.read_to_string(&mut s).ok();
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let mut peak_kib = 0;
    let status = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait for sortwise") {
            break status;
        }
        if started.elapsed().as_secs_f64() > CASE_SECONDS {
            child.kill().ok();
            break child.wait().expect("wait for sortwise");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Run {
        code,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        peak_mib: peak_kib as f64 / 1024.0,
        seconds: started.elapsed().as_secs_f64(),
    }
}

struct Setup {
    dir: PathBuf,
    weights: PathBuf,
    weights_bytes: Vec<u8>,
    good: PathBuf,
    backbone: Backbone,
    stage: sortwise::backbone::StageWeights,
}

fn setup(tag: &str) -> Setup {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hostile-corpus-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    // A randomly initialised EfficientNet-Lite0 (fast on the CPU): what matters is how files
    // are handled, not what the network says about them.
    let device = Device::flex();
    let backbone = Backbone::init(Arch::EfficientnetLite0, &device);
    let weights_bytes =
        weights::save_web(&backbone, weights::StorageDtype::F16, SOURCE_SHA).unwrap();
    let weights = dir.join("lite0.safetensors");
    std::fs::write(&weights, &weights_bytes).unwrap();
    let (backbone, _) =
        weights::load_web(&weights_bytes, Some(Arch::EfficientnetLite0), &device).unwrap();
    let stage = pollster::block_on(backbone.split_last_stage().to_weights()).unwrap();
    let good = dir.join("good_photo.jpg");
    std::fs::write(&good, corpus::jpeg(&corpus::gradient(320, 240))).unwrap();
    Setup {
        dir,
        weights,
        weights_bytes,
        good,
        backbone,
        stage,
    }
}

fn write_case(dir: &Path, case: &Case) -> PathBuf {
    let path = dir.join(&case.name);
    std::fs::write(&path, &case.bytes).unwrap();
    if let Some(keep) = std::env::var_os("SORTWISE_CORPUS_DIR") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::write(Path::new(&keep).join(&case.name), &case.bytes).unwrap();
    }
    path
}

fn embedding_ok(entry: &Value) -> bool {
    entry["embedding"].as_array().is_some_and(|e| {
        e.len() == Arch::EfficientnetLite0.feature_dim()
            && e.iter().all(|v| v.as_f64().is_some_and(f64::is_finite))
    })
}

/// Runs `cases` on two threads (each case is its own process, so their peaks stay apart);
/// `f` returns the problems with one case.
fn run_all(cases: &[Case], f: impl Fn(&Case) -> Vec<String> + Sync) -> Vec<String> {
    let next = Mutex::new(0usize);
    let problems = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        *n - 1
                    };
                    let Some(case) = cases.get(i) else { break };
                    let found = f(case);
                    problems
                        .lock()
                        .unwrap()
                        .extend(found.into_iter().map(|p| format!("{}: {p}", case.name)));
                }
            });
        }
    });
    problems.into_inner().unwrap()
}

/// What every run must satisfy whatever the case: no panic, no kill, in time, in memory.
fn process_problems(case: &Case, run: &Run, base_mib: f64) -> Vec<String> {
    let mut p = Vec::new();
    if run.code == 101 || run.code >= 128 {
        p.push(format!(
            "exit code {} (panic or killed): {}",
            run.code,
            run.stderr.trim()
        ));
    }
    if run.seconds > CASE_SECONDS {
        p.push(format!("took {:.1} s", run.seconds));
    }
    let limit = base_mib + case.extra_mib as f64;
    if run.peak_mib > limit {
        p.push(format!(
            "peak memory {:.0} MiB, over {limit:.0} MiB (a normal photo: {base_mib:.0} MiB)",
            run.peak_mib
        ));
    }
    p
}

#[test]
fn hostile_corpus_through_the_cli() {
    let s = setup("cli");
    let images = corpus::image_cases();
    let models = corpus::model_cases(&corpus::Backbone {
        arch: Arch::EfficientnetLite0,
        source_sha256: SOURCE_SHA,
        stage: &s.stage,
    });
    let weight_files = corpus::weight_cases(&s.weights_bytes);
    let total = images.len() + models.len() + weight_files.len();
    assert!(total >= 50, "the corpus has {total} cases");

    let weights = s.weights.to_str().unwrap();
    let good = s.good.to_str().unwrap();
    let embed = |image: &str| {
        sortwise(&[
            "embed",
            "--arch",
            "efficientnet_lite0",
            "--weights",
            weights,
            "--backend",
            "cpu",
            image,
            good,
        ])
    };
    // A normal call with the same shape (two photos) sets the memory baseline.
    let base = embed(good);
    assert_eq!(base.code, 0, "{}", base.stderr);
    let base_mib = base.peak_mib;
    eprintln!(
        "baseline: two photos in {:.2} s, peak {base_mib:.0} MiB",
        base.seconds
    );

    let mut problems = run_all(&images, |case| {
        let path = write_case(&s.dir, case);
        let run = embed(path.to_str().unwrap());
        let mut p = process_problems(case, &run, base_mib);
        let json: Value = serde_json::from_str(run.stdout.trim()).unwrap_or(Value::Null);
        let entries = json["images"].as_array().cloned().unwrap_or_default();
        if entries.len() != 2 {
            p.push(format!("no JSON for both images: {}", run.stderr.trim()));
            return p;
        }
        if !embedding_ok(&entries[1]) {
            p.push("the normal photo of the same call was not embedded".into());
        }
        let message = entries[0]["error"].as_str();
        if message.is_none() && !embedding_ok(&entries[0]) {
            p.push("neither an embedding nor an error".into());
        }
        let expected_code = if message.is_some() { 1 } else { 0 };
        if run.code != expected_code && p.is_empty() {
            p.push(format!("exit code {} (expected {expected_code})", run.code));
        }
        p.extend(corpus::check(case.expect, message).err());
        eprintln!(
            "{:42} {:>6.0} MiB {:>5.2} s  {}",
            case.name,
            run.peak_mib - base_mib,
            run.seconds,
            message.unwrap_or("ok")
        );
        p
    });

    let predict = |model: &str, weights: &str| {
        sortwise(&[
            "predict",
            "--model",
            model,
            "--weights",
            weights,
            "--backend",
            "cpu",
            good,
        ])
    };
    problems.extend(run_all(&models, |case| {
        let path = write_case(&s.dir, case);
        let run = predict(path.to_str().unwrap(), weights);
        let mut p = process_problems(case, &run, base_mib);
        let message = match run.code {
            0 => {
                let line: Value = serde_json::from_str(run.stdout.trim()).unwrap_or(Value::Null);
                if !line["label"].is_string() || !line["confidence"].is_number() {
                    p.push(format!("exit 0 without a prediction: {}", run.stdout));
                }
                None
            }
            2 => Some(run.stderr.trim().to_string()),
            _ => {
                if p.is_empty() {
                    p.push(format!("exit code {}: {}", run.code, run.stderr.trim()));
                }
                Some(run.stderr.trim().to_string())
            }
        };
        // The CLI loads the backbone the model names: another architecture is refused there.
        let expect = if case.name == "model_for_other_backbone.sortwise" {
            Expect::Refused(&["this file holds efficientnet_lite0 weights"])
        } else {
            case.expect
        };
        p.extend(corpus::check(expect, message.as_deref()).err());
        eprintln!(
            "{:42} {:>6.0} MiB {:>5.2} s  {}",
            case.name,
            run.peak_mib - base_mib,
            run.seconds,
            message
                .as_deref()
                .and_then(|m| m.lines().last())
                .unwrap_or("ok")
        );
        p
    }));

    problems.extend(run_all(&weight_files, |case| {
        let path = write_case(&s.dir, case);
        let w = path.to_str().unwrap().to_string();
        let run = sortwise(&[
            "embed",
            "--arch",
            "efficientnet_lite0",
            "--weights",
            &w,
            "--backend",
            "cpu",
            good,
        ]);
        let mut p = process_problems(case, &run, base_mib);
        if run.code != 2 {
            p.push(format!("exit code {} (expected 2)", run.code));
        }
        p.extend(corpus::check(case.expect, Some(run.stderr.trim())).err());
        p
    }));
    assert!(
        problems.is_empty(),
        "{} of {total} cases failed:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The same cases through the library in this process: decoding and the evaluation transform
/// for images; parsing, the backbone check and loading the stage for model files.
#[test]
fn hostile_corpus_through_the_library() {
    let s = setup("lib");
    let mut problems = Vec::new();
    for case in corpus::image_cases() {
        let r = catch_unwind(AssertUnwindSafe(|| {
            preprocess::decode(&case.bytes).map(|img| {
                assert_eq!(
                    preprocess::eval_tensor(&img, Fit::Crop).len(),
                    3 * 224 * 224
                );
                assert!(preprocess::thumbnail_jpeg(&img).is_ok());
            })
        }));
        match r {
            Err(_) => problems.push(format!("{}: panicked", case.name)),
            Ok(r) => {
                let message = r.err().map(|e| e.to_string());
                if let Err(e) = corpus::check(case.expect, message.as_deref()) {
                    problems.push(format!("{}: {e}", case.name));
                }
            }
        }
    }
    let models = corpus::model_cases(&corpus::Backbone {
        arch: Arch::EfficientnetLite0,
        source_sha256: SOURCE_SHA,
        stage: &s.stage,
    });
    for case in models {
        let r = catch_unwind(AssertUnwindSafe(|| {
            let (model, stage) = Model::from_bytes_with_stage(&case.bytes)?;
            model.check_backbone(Arch::EfficientnetLite0, SOURCE_SHA)?;
            if let Some(stage) = stage {
                s.backbone.split_last_stage().with_weights(&stage)?;
            }
            Ok::<_, sortwise::Error>(())
        }));
        match r {
            Err(_) => problems.push(format!("{}: panicked", case.name)),
            Ok(r) => {
                let message = r.err().map(|e| e.to_string());
                if let Err(e) = corpus::check(case.expect, message.as_deref()) {
                    problems.push(format!("{}: {e}", case.name));
                }
            }
        }
    }
    for case in corpus::weight_cases(&s.weights_bytes) {
        let r = catch_unwind(AssertUnwindSafe(|| {
            weights::load_web(&case.bytes, Some(Arch::EfficientnetLite0), &Device::flex())
                .map(|_| ())
        }));
        match r {
            Err(_) => problems.push(format!("{}: panicked", case.name)),
            Ok(r) => {
                let message = r.err().map(|e| e.to_string());
                if let Err(e) = corpus::check(case.expect, message.as_deref()) {
                    problems.push(format!("{}: {e}", case.name));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
