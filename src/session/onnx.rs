//! The session's trained model as one ONNX file (`crate::formats::onnx`): what the page's
//! "Export → ONNX" downloads.

use std::future::Future;

use super::Session;
use crate::error::Result;
use crate::formats::model_file::Model;
use crate::formats::onnx::{self, ExportOptions};

impl Session {
    /// The trained model (its fine-tuned stage included) on this session's backbone as an ONNX
    /// file: input `input` `[N, 3, 224, 224]` normalised, output `probs` `[N, classes]` =
    /// `softmax(logits / T)`, labels and preprocessing in its metadata.
    ///
    /// Returns a future that holds no borrow of the session (the model and the backbone are
    /// copied out first), so a shell that keeps the session in a `RefCell` can await it without
    /// holding the borrow: `let bytes = session.get().export_onnx(&options)?.await?;`.
    /// Errors before the future when there is no trained model.
    pub fn export_onnx(
        &self,
        options: &ExportOptions,
    ) -> Result<impl Future<Output = Result<Vec<u8>>> + use<>> {
        let producer = format!("sortwise {}", options.producer_version);
        // Through the `.sortwise` file's own checks, so the ONNX file holds what that file would.
        let (model, stage): (Model, _) =
            Model::from_bytes_with_stage(&self.export_model(&producer)?)?;
        let backbone = self.backbone.clone();
        let options = options.clone();
        Ok(async move { onnx::export(&backbone, &model, stage.as_ref(), &options).await })
    }
}
