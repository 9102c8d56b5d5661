//! JS values in and out: option fields, byte arrays, errors, and plain objects.

use js_sys::{Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::arch::Arch;
use crate::preprocess::Fit;
use crate::session::{DEFAULT_AUGMENT, MAX_AUGMENT, Options};

pub fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// `obj[key]`, or `undefined` when `obj` is not an object.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    if obj.is_object() {
        Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// `value` as a plain JS object, through one JSON string: in the WebGPU build (pkg/) every JS
/// value handed back to wasm costs ~0.5 ms in Chromium (numbers do not), so building the object
/// field by field (serde-wasm-bindgen) took ~7.5 ms for a progress report, and training paid
/// that every epoch; JSON.parse is one such value. (Non-finite floats become `null`.)
pub fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let json = serde_json::to_string(value).map_err(js_err)?;
    js_sys::JSON::parse(&json)
}

pub fn bytes_of(value: &JsValue, what: &str) -> Result<Vec<u8>, JsValue> {
    if value.is_instance_of::<Uint8Array>() {
        Ok(Uint8Array::new(value).to_vec())
    } else {
        Err(js_err(format!("{what} must be a Uint8Array")))
    }
}

/// `label` for each of `n` photos: one class name for all, or an array of one a photo.
pub fn labels_of(label: &JsValue, n: usize) -> Result<Vec<String>, JsValue> {
    if let Some(l) = label.as_string() {
        return Ok(vec![l; n]);
    }
    if !js_sys::Array::is_array(label) {
        return Err(js_err(
            "the class must be a name, or an array of one name a photo",
        ));
    }
    js_sys::Array::from(label)
        .iter()
        .map(|l| {
            l.as_string()
                .ok_or_else(|| js_err("each class in the array must be a name"))
        })
        .collect()
}

/// `opts.arch`, when given.
pub fn arch_option(opts: &JsValue) -> Result<Option<Arch>, JsValue> {
    get(opts, "arch")
        .as_string()
        .map(|a| a.parse::<Arch>().map_err(js_err))
        .transpose()
}

/// The session options of `Trainer.create` / `Trainer.load`: `{fit, finetune, augment}`.
pub fn session_options(opts: &JsValue) -> Result<Options, JsValue> {
    let fit = match get(opts, "fit").as_string() {
        Some(s) => s.parse::<Fit>().map_err(js_err)?,
        None => Fit::default(),
    };
    let finetune = match get(opts, "finetune") {
        v if v.is_undefined() || v.is_null() => false,
        v => v
            .as_bool()
            .ok_or_else(|| js_err("options.finetune must be true or false"))?,
    };
    // Absent, the head-only default even with `finetune` (the page always passes it).
    let augment = match get(opts, "augment").as_f64() {
        None => DEFAULT_AUGMENT,
        Some(k) if k >= 0.0 && k <= MAX_AUGMENT as f64 && k.fract() == 0.0 => k as usize,
        Some(k) => {
            return Err(js_err(format!(
                "augment must be a whole number from 0 to {MAX_AUGMENT}, not {k}"
            )));
        }
    };
    Ok(Options {
        fit,
        augment,
        finetune,
        ..Options::default()
    })
}
