//! How many stage inputs a session may keep: fine-tuning caches every view's stage input,
//! 100x an embedding, so the limit is checked before any is computed.

use crate::Arch;
use crate::error::{Error, Result};

/// Most bytes of stage inputs a trainer keeps. wasm32 memory ends at 4 GiB and never shrinks,
/// and the backbone (70-300 MB), thumbnails, a decoded photo (up to 256 MB), the fine-tuning
/// pass itself and the allocator's fragmentation need the rest; natively the same limit keeps
/// the engines alike.
pub const MAX_STAGE_CACHE_BYTES: u64 = 1536 * 1024 * 1024;

/// Bytes of one view's cached stage input for `arch` (f32 `C·H·W`).
pub fn stage_view_bytes(arch: Arch) -> u64 {
    4 * arch.stage_input_shape().iter().product::<usize>() as u64
}

/// How many views' stage inputs fit in [`MAX_STAGE_CACHE_BYTES`] for `arch`.
pub fn max_stage_views(arch: Arch) -> u64 {
    MAX_STAGE_CACHE_BYTES / stage_view_bytes(arch)
}

/// Refuse to cache `adding` more views when `cached` are already kept, before any of them is
/// computed, with a message that says how many images fit at `views_per_image`.
pub fn check_stage_cache(arch: Arch, cached: u64, adding: u64, views_per_image: u64) -> Result<()> {
    let max = max_stage_views(arch);
    if cached.saturating_add(adding) <= max {
        return Ok(());
    }
    let per = views_per_image.max(1);
    let mb = |views: u64| views.saturating_mul(stage_view_bytes(arch)) / (1024 * 1024);
    Err(Error::Invalid(format!(
        "fine-tuning keeps every view's stage input ({} KB each for {arch}) and {} views fit \
         ({} MB, the memory a browser tab can spare): that is {} images at {per} view(s) each. \
         {cached} are kept and these would add {adding} ({} MB in all); remove images, lower \
         augment, or pick a backbone with a smaller stage (efficientnet_lite0 fits {} views)",
        stage_view_bytes(arch) / 1024,
        max,
        MAX_STAGE_CACHE_BYTES / (1024 * 1024),
        max / per,
        mb(cached.saturating_add(adding)),
        max_stage_views(Arch::EfficientnetLite0),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_cache_limit_counts_views_by_backbone() {
        // 784 KiB a view for ResNet-50: 2,006 views in 1.5 GiB.
        assert_eq!(stage_view_bytes(Arch::Resnet50), 4 * 1024 * 14 * 14);
        assert_eq!(max_stage_views(Arch::Resnet50), 2006);
        assert_eq!(max_stage_views(Arch::Resnet18), 8024);
        assert_eq!(max_stage_views(Arch::EfficientnetLite0), 18_342);
        assert!(check_stage_cache(Arch::Resnet50, 2000, 6, 3).is_ok());
        let e = check_stage_cache(Arch::Resnet50, 2000, 7, 3)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2006 views fit") && e.contains("668 images at 3 view(s)"),
            "{e}"
        );
        assert!(e.contains("2000 are kept") && e.contains("add 7"), "{e}");
        assert!(check_stage_cache(Arch::Resnet18, u64::MAX, 1, 1).is_err());
    }
}
