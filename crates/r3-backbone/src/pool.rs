//! Running a stretch of tensor work on rayon's global pool, the pool that the flex backend parallelises over.
//!
//! flex spreads every large operation (gemm, element-wise ops, our kernels) over rayon's global pool. Called from
//! a thread outside that pool (the program's main thread, a data-parallel peer thread), each such operation is
//! *injected* into the pool: the caller blocks on a latch while the pool's workers wake up, run it and signal
//! back, and the workers go back to sleep before the next operation arrives. A forward pass is hundreds of
//! operations, so this hand-off is paid hundreds of times (on two cores, the prefill of SmolLM2-135M at 8 × 200
//! tokens kept the CPUs 1.71 of 2 busy). Run from one of the pool's workers, the same operations split their
//! work with `join` on the spot and the other worker steals its half: [`on_pool`] moves the whole stretch onto a
//! worker once (docs/performance.md, "Running on the pool").
//!
//! Only stretches that never block on another thread are moved: a worker that waits (for a data-parallel
//! all-reduce, a channel) is a worker taken from the pool, and with `RAYON_NUM_THREADS=1` the pool's only one.
//!
//! Only flex's work is moved. The cubecl backends (wgpu, vulkan, cuda) queue each thread's operations on a
//! stream of its own, so a forward pass on a rayon worker over weights made on the main thread works across
//! streams; on wgpu over Mesa's lavapipe the first such pass was right and every later one wrong (CI of
//! 2026-11-26, the SmolLM2 golden test; where inside cubecl it goes wrong was not pinned down). Nothing is gained
//! there anyway: their work does not run on rayon's pool.

use burn::tensor::Device;

/// Runs `f` and returns its result; on a flex device on a worker of rayon's global pool: directly when the caller
/// already is one, else after one hand-off, the caller waiting until `f` returns. On any other device `f` runs on
/// the calling thread (see the module documentation). Panics in `f` propagate to the caller.
///
/// `device` is the device of the tensors `f` works on. `f` must not block on other threads.
pub fn on_pool<R: Send>(device: &Device, f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() || !crate::kernels::is_flex(device) {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;

    /// On flex the work runs on a worker of the global pool, returns its value, and nesting does not hand off
    /// again. (That other devices stay on the caller is checked by the integration test
    /// `cache::on_pool_moves_only_flex_work`, which CI also runs on wgpu.)
    #[test]
    fn flex_work_runs_on_a_worker_of_the_global_pool() {
        let device = test_device();
        assert!(rayon::current_thread_index().is_none(), "the test harness thread is not a rayon worker");
        let (index, nested) = on_pool(&device, || {
            let index = rayon::current_thread_index();
            let here = std::thread::current().id();
            (index, on_pool(&device, || std::thread::current().id()) == here)
        });
        let index = index.expect("a worker of the global pool");
        assert!(index < rayon::current_num_threads());
        assert!(nested, "a nested call runs on the same worker");
    }

    /// A panic inside reaches the caller.
    #[test]
    fn a_panic_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| on_pool(&test_device(), || panic!("inside")));
        assert!(caught.is_err());
    }
}
