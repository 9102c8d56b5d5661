//! What runs on the backbone's output: the batched forward pass (`infer`), images to cached rows
//! (`embed`), the trained linear head (`head`) and its probabilities as what a person sees
//! (`classifier`).

pub mod classifier;
pub mod embed;
pub mod head;
pub mod infer;
