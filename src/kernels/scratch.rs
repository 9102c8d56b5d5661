//! Working buffers of the CPU convolutions (im2col blocks, Winograd's transformed tiles and
//! products), kept between calls.
//!
//! A fresh buffer of tens of MB is fresh pages from the OS on every call: natively the first
//! touch of each page faulted (~15% of an EfficientNet profile), and in wasm the memory only
//! grows anyway, so keeping the buffers costs nothing extra there. What is kept is bounded by
//! the largest call's needs (about 110 MB for ResNet-18 at batch 16, a few MB at batch 1).

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// At most this many idle buffers are kept: one call holds at most three at once, and a batch
/// runs as one pass per thread side by side (`tensor_io::in_batches`).
fn keep() -> usize {
    3 * crate::parallel::threads() + 1
}

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A buffer of `len` floats with unspecified contents, returned to the pool when dropped.
pub(super) struct Scratch {
    buf: Vec<f32>,
    len: usize,
}

impl Scratch {
    /// The smallest idle buffer that holds `len` floats, else the largest one grown to `len`.
    pub fn take(len: usize) -> Scratch {
        let mut buf = {
            let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
            let fits = (0..pool.len())
                .filter(|&i| pool[i].len() >= len)
                .min_by_key(|&i| pool[i].len());
            let pick = fits.or_else(|| (0..pool.len()).max_by_key(|&i| pool[i].len()));
            pick.map(|i| pool.swap_remove(i)).unwrap_or_default()
        };
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        Scratch { buf, len }
    }
}

impl Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buf[..self.len]
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf[..self.len]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        pool.push(std::mem::take(&mut self.buf));
        if pool.len() > keep() {
            let smallest = (0..pool.len()).min_by_key(|&i| pool[i].len());
            if let Some(i) = smallest {
                pool.swap_remove(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_sized() {
        let mut a = Scratch::take(1000);
        assert_eq!(a.len(), 1000);
        a.fill(1.0);
        drop(a);
        // Other tests may take buffers meanwhile, so only the sizes are certain.
        let b = Scratch::take(500);
        assert_eq!(b.len(), 500);
        let c = Scratch::take(2000);
        assert_eq!(c.len(), 2000);
        assert_ne!(c.buf.as_ptr(), b.buf.as_ptr());
        assert!(POOL.lock().unwrap().len() <= keep());
    }
}
