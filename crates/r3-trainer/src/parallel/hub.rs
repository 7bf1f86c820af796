//! The in-process meeting point of the local peers, and the [`Transport`] between processes.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::ENV_TIMEOUT;
use crate::error::{Error, Result};

pub(super) fn timeout() -> Duration {
    let secs = std::env::var(ENV_TIMEOUT).ok().and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(3600);
    Duration::from_secs(secs.max(1))
}

/// One process's end of the all-reduce between the processes of a run (TCP today; MPI could replace it).
pub trait Transport: Send {
    /// Sums `values` element-wise over all processes, in process-rank order; every process gets the same
    /// (bit-identical) result. The error is a message naming the process and the cause.
    fn all_reduce(&mut self, values: Vec<f64>) -> std::result::Result<Vec<f64>, String>;
}

/// The in-process meeting point of the local peers: local peer 0 waits for all deposits, sums them in order
/// (and with the other processes), and publishes the result for everyone.
pub(super) struct Hub {
    n: usize,
    state: Mutex<HubState>,
    ready: Condvar,
}

struct HubState {
    slots: Vec<Option<Vec<f64>>>,
    filled: usize,
    generation: u64,
    result: Arc<std::result::Result<Vec<f64>, String>>,
}

impl Hub {
    pub(super) fn new(n: usize) -> Self {
        Hub {
            n,
            state: Mutex::new(HubState {
                slots: vec![None; n],
                filled: 0,
                generation: 0,
                result: Arc::new(Ok(Vec::new())),
            }),
            ready: Condvar::new(),
        }
    }

    pub(super) fn reduce(
        &self,
        local: usize,
        values: Vec<f64>,
        remote: Option<&Mutex<Box<dyn Transport>>>,
    ) -> Result<Vec<f64>> {
        fn poisoned<T>(_: T) -> Error {
            Error::Parallel { message: "a peer thread panicked while holding the all-reduce".into() }
        }
        let deadline = Instant::now() + timeout();
        let mut st = self.state.lock().map_err(poisoned)?;
        let generation = st.generation;
        st.slots[local] = Some(values);
        st.filled += 1;
        if local == 0 {
            while st.filled < self.n {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::Parallel {
                        message: format!(
                            "{} of {} local peers reached the all-reduce within {ENV_TIMEOUT} = {} s: a peer \
                             stopped or hangs",
                            st.filled,
                            self.n,
                            timeout().as_secs()
                        ),
                    });
                }
                st = self.ready.wait_timeout(st, left).map_err(poisoned)?.0;
            }
            let slots: Vec<Vec<f64>> = st.slots.iter_mut().map(|s| s.take().unwrap_or_default()).collect();
            st.filled = 0;
            let result = sum_in_order(slots).and_then(|sum| match remote {
                None => Ok(sum),
                Some(r) => r
                    .lock()
                    .map_err(|_| "the connection to the other processes is poisoned".to_string())?
                    .all_reduce(sum),
            });
            st.result = Arc::new(result);
            st.generation += 1;
            self.ready.notify_all();
            return st.result.as_ref().clone().map_err(|message| Error::Parallel { message });
        }
        self.ready.notify_all();
        while st.generation == generation {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Parallel {
                    message: format!(
                        "local peer {local} waited {} s ({ENV_TIMEOUT}) for the all-reduce: a peer stopped or hangs",
                        timeout().as_secs()
                    ),
                });
            }
            st = self.ready.wait_timeout(st, left).map_err(poisoned)?.0;
        }
        st.result.as_ref().clone().map_err(|message| Error::Parallel { message })
    }
}

/// Sums equal-length vectors element-wise, in the order given.
pub(super) fn sum_in_order(parts: Vec<Vec<f64>>) -> std::result::Result<Vec<f64>, String> {
    let mut parts = parts.into_iter();
    let mut sum = parts.next().unwrap_or_default();
    for (i, p) in parts.enumerate() {
        if p.len() != sum.len() {
            return Err(format!(
                "peer {} brought {} values to the all-reduce but peer 0 brought {}: the replicas differ (same model \
                 and trainable parameters on every peer?)",
                i + 1,
                p.len(),
                sum.len()
            ));
        }
        sum.iter_mut().zip(&p).for_each(|(s, x)| *s += x);
    }
    Ok(sum)
}
