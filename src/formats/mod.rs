//! Bytes in and out of the engine: backbone weights (`weights`), the `.sortwise` model file
//! (`model_file`), a model in a link (`share`) and the whole classifier as ONNX (`onnx`).

pub mod model_file;
pub mod onnx;
pub mod share;
pub mod weights;
