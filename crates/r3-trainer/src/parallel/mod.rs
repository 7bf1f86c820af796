//! Data parallelism (docs/scaling.md): several replicas of the model, one per device (a *peer*), each computing
//! the gradient of its share of the global batch; the gradients are summed over the peers (an all-reduce), and
//! every replica clips and steps with the same summed gradient, so the replicas stay identical.
//!
//! The trainers keep the loss normalisation of one device: the SFT loss of a global batch is
//! `Σ NLL / (real target tokens of the whole global batch)` and every micro-batch's NLL is divided by that global
//! count before its backward pass, so the *sum* of the peers' gradients is the gradient of the whole batch
//! (weighted by tokens, not a mean of per-peer means). LR-GRPO hands whole advantage pools to peers (see
//! `r3-grpo`), so the advantages are computed over the same pool as on one device.
//!
//! Peers:
//! - **local**: one thread per device of [`ParallelConfig::devices`] (`--devices cuda:0,cuda:1`). Several peers
//!   may share one device (`--devices flex,flex`: threads on the CPU backend; the tests do this).
//! - **processes** (several machines): `R3_WORLD_SIZE` processes, each with the same number of local devices,
//!   started with `R3_RANK` = 0, 1, … and `R3_COORDINATOR=host:port` (see [`Launch::from_env`]). Process 0
//!   listens there; the others connect. The global rank of a peer is `process rank · local devices + local
//!   index`. When the collective starts, every process takes process 0's trainable parameters
//!   ([`Peer::sync_from_rank0`]): each builds its own model, and a fresh LatentRATT or LoRA initialisation is
//!   random.
//!
//! The all-reduce:
//! - [`Reduction::Burn`]: burn's own collective, [`burn::tensor::distributed::all_reduce`] with
//!   [`ReduceOperation::Sum`] per gradient tensor, inside a [`DistributedContext`] over the local devices. burn
//!   0.22.1 implements it for CUDA only (NCCL in cubecl-cuda); it is used for local CUDA peers.
//! - [`Reduction::Host`]: the gradients are read back to the host as one flat vector and summed in f64 in rank
//!   order by an in-process hub (local peers) and, between processes, over TCP through the coordinator; every
//!   peer receives the same bit-identical sum. This is the path of the flex, wgpu and vulkan backends and of
//!   multi-machine runs.
//!
//! Why the host path exists (burn 0.22.1, files under `~/.cargo/registry/src/*/`):
//! - `burn-flex-0.22.1/src/ops/transaction.rs:10-11`: "Flex does not support collective operations" —
//!   `impl DistributedOps<Flex> for Flex {}` keeps the defaults, and the default `all_reduce` and
//!   `sync_collective` are `unimplemented!()` (`burn-backend-0.22.1/src/backend/distributed/ops.rs`, the
//!   `fn all_reduce` and `fn sync_collective` of `trait DistributedOps`).
//! - `burn-backend-extension-0.22.1/src/catalog.rs:30-35`: the Flex backend is listed with `distributed: false`,
//!   so `burn-dispatch-0.22.1/src/ops/distributed.rs` generates no distributed arm for it and
//!   `DistributedContext::init` with flex devices panics "Distributed operations are not supported for device"
//!   (`burn-dispatch-0.22.1/src/ops/distributed.rs:66`).
//! - `burn-backend-extension-0.22.1/src/catalog.rs:17-27`: the cubecl runtimes claim collectives, but "only CUDA
//!   implements them today": on wgpu/vulkan the call reaches cubecl's default `ComputeServer::all_reduce`, which
//!   returns `NoDeviceTransport` (`cubecl-runtime-0.11.3/src/server/base.rs`, `fn all_reduce`).
//! - Between machines: cubecl-cuda mints the NCCL unique id inside the process
//!   (`cubecl-cuda-0.11.3/src/compute/communication.rs:95-108`, `UNIQUE_IDS_MAP`), with no way to share it with
//!   another process, and burn-remote refuses cross-server collectives ("cross-peer all_reduce is not supported
//!   yet", `burn-remote-0.22.1/src/client/runner.rs:170-185`). burn 0.22.1 has no inter-node collective (the
//!   separate `burn-collective` crate stops at 0.21 and does not build against 0.22).

use std::sync::{Arc, Mutex};

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use burn::tensor::distributed::{DistributedConfig, DistributedContext, ReduceOperation};

use crate::error::{Error, Result};

mod hub;
mod tcp;
mod visit;
mod worker;

pub use hub::Transport;
pub use worker::{Peers, Worker};

use hub::Hub;
use visit::{BurnReduce, Flatten, ParamValues, SetParams, Unflatten};

/// The environment variable with the rank of this process (0-based) in a multi-machine run.
pub const ENV_RANK: &str = "R3_RANK";
/// The environment variable with the number of processes of a multi-machine run.
pub const ENV_WORLD_SIZE: &str = "R3_WORLD_SIZE";
/// The environment variable with `host:port` of the coordinator (process 0 listens there).
pub const ENV_COORDINATOR: &str = "R3_COORDINATOR";
/// The environment variable with the seconds a peer waits for the others (connecting, or at an all-reduce)
/// before it gives up (default 3600: a peer may wait a whole micro-batch of a slower peer on a CPU).
pub const ENV_TIMEOUT: &str = "R3_COLLECTIVE_TIMEOUT_S";

/// How the gradients of the local peers are summed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// burn's collective all-reduce (`burn::tensor::distributed::all_reduce`): CUDA devices only in burn 0.22.1,
    /// and local peers only (one process).
    Burn,
    /// Read back and summed on the host (every backend, and between processes).
    Host,
}

/// The processes of a run: this one's rank, how many there are, and where process 0 listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// The rank of this process (0-based).
    pub rank: usize,
    /// The number of processes.
    pub world_size: usize,
    /// `host:port` of the coordinator (process 0 binds it, the others connect); `None` for one process.
    pub coordinator: Option<String>,
}

impl Launch {
    /// One process.
    pub fn single() -> Self {
        Launch { rank: 0, world_size: 1, coordinator: None }
    }

    /// Reads [`ENV_RANK`], [`ENV_WORLD_SIZE`] and [`ENV_COORDINATOR`]; without `R3_WORLD_SIZE` (or with 1) the
    /// run is one process.
    ///
    /// # Errors
    /// [`Error::Parallel`] for a rank or size that is not a number, a rank outside the world, or a missing
    /// coordinator address.
    pub fn from_env() -> Result<Self> {
        let var = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
        let num = |key: &str, value: String| {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| Error::Parallel { message: format!("{key}={value:?} is not a non-negative integer") })
        };
        let world_size = match var(ENV_WORLD_SIZE) {
            None => return Ok(Self::single()),
            Some(v) => num(ENV_WORLD_SIZE, v)?,
        };
        let rank = match var(ENV_RANK) {
            None if world_size <= 1 => 0,
            None => {
                return Err(Error::Parallel {
                    message: format!(
                        "{ENV_WORLD_SIZE}={world_size} but {ENV_RANK} is not set: give every process its rank 0..{world_size}"
                    ),
                });
            }
            Some(v) => num(ENV_RANK, v)?,
        };
        let launch = Launch { rank, world_size: world_size.max(1), coordinator: var(ENV_COORDINATOR) };
        launch.check()?;
        Ok(launch)
    }

    fn check(&self) -> Result<()> {
        if self.rank >= self.world_size {
            return Err(Error::Parallel {
                message: format!(
                    "{ENV_RANK}={} is outside the world of {ENV_WORLD_SIZE}={} processes (ranks 0..{})",
                    self.rank, self.world_size, self.world_size
                ),
            });
        }
        if self.world_size > 1 && self.coordinator.is_none() {
            return Err(Error::Parallel {
                message: format!(
                    "{ENV_WORLD_SIZE}={} needs {ENV_COORDINATOR}=host:port, an address of the machine of rank 0 that \
                     every process can reach",
                    self.world_size
                ),
            });
        }
        Ok(())
    }
}

/// The data-parallel layout of a run: the local devices (one peer each), how their gradients are summed, and
/// the processes.
#[derive(Clone, Debug)]
pub struct ParallelConfig {
    /// The local devices, one peer each, without autodiff (the trainers add it); the first one is the device
    /// of the trainer's own model. A device may repeat (several peers on one device).
    pub devices: Vec<Device>,
    /// How the local gradients are summed.
    pub reduction: Reduction,
    /// The processes.
    pub launch: Launch,
}

impl ParallelConfig {
    /// Peers on `devices` of this process, summed on the host.
    pub fn local(devices: Vec<Device>) -> Self {
        ParallelConfig { devices, reduction: Reduction::Host, launch: Launch::single() }
    }

    /// Peers over all processes.
    pub fn world_size(&self) -> usize {
        self.devices.len() * self.launch.world_size
    }

    /// The global rank of local peer `local`.
    pub fn global_rank(&self, local: usize) -> usize {
        self.launch.rank * self.devices.len() + local
    }

    /// Starts the collective and returns one [`Peer`] per local device (in order). Process 0 binds the
    /// coordinator address and waits for the other processes; the others connect to it (retrying until
    /// [`ENV_TIMEOUT`]).
    ///
    /// # Errors
    /// [`Error::Parallel`] for an empty device list, [`Reduction::Burn`] across processes, or a coordinator that
    /// cannot be bound or reached.
    pub fn connect(&self) -> Result<Vec<Peer>> {
        if self.devices.is_empty() {
            return Err(Error::Parallel { message: "no devices: give at least one (`--devices flex`)".into() });
        }
        self.launch.check()?;
        if self.reduction == Reduction::Burn && self.launch.world_size > 1 {
            return Err(Error::Parallel {
                message: "burn 0.22.1 has no collective between processes: multi-machine runs reduce on the host \
                          (`Reduction::Host`)"
                    .into(),
            });
        }
        let remote = if self.launch.world_size > 1 {
            Some(Arc::new(Mutex::new(Box::new(tcp::Remote::connect(&self.launch)?) as Box<dyn Transport>)))
        } else {
            None
        };
        let context = (self.reduction == Reduction::Burn).then(|| {
            let devices: Vec<Device> = self.devices.iter().map(|d| d.clone().inner()).collect();
            Arc::new(DistributedContext::init(devices, DistributedConfig { all_reduce_op: ReduceOperation::Sum }))
        });
        let hub = Arc::new(Hub::new(self.devices.len()));
        Ok(self
            .devices
            .iter()
            .enumerate()
            .map(|(i, device)| Peer {
                rank: self.global_rank(i),
                world_size: self.world_size(),
                local: i,
                device: device.clone(),
                hub: hub.clone(),
                remote: if i == 0 { remote.clone() } else { None },
                burn: context.clone().map(|c| (self.devices.iter().map(|d| d.clone().inner()).collect(), c)),
            })
            .collect())
    }
}

/// Which shares of a step a peer computes: item `i` of `n` goes to peer `i mod world`.
pub fn shares(n: usize, rank: usize, world: usize) -> Vec<usize> {
    (0..n).filter(|i| i % world.max(1) == rank).collect()
}

/// One peer's end of the collective: its global rank, its device, and the all-reduce.
pub struct Peer {
    rank: usize,
    world_size: usize,
    local: usize,
    device: Device,
    hub: Arc<Hub>,
    remote: Option<Arc<Mutex<Box<dyn Transport>>>>,
    burn: Option<(Vec<Device>, Arc<DistributedContext>)>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .field("device", &self.device)
            .field("reduction", &if self.burn.is_some() { Reduction::Burn } else { Reduction::Host })
            .finish()
    }
}

/// What a peer hands to [`Peer::reduce_step`]: its summed gradients (`None` when its share was empty), small
/// values to sum over the peers (losses, counts), and whether its share failed.
#[derive(Default)]
pub struct PeerShare {
    /// The peer's gradients (the sum over its micro-batches).
    pub grads: Option<GradientsParams>,
    /// Values to sum over all peers (in the same order on every peer).
    pub scalars: Vec<f64>,
    /// A message when the peer's share failed; every peer then returns an error.
    pub failure: Option<String>,
}

impl Peer {
    /// The global rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of peers over all processes.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// The device of this peer (without autodiff).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Sums `values` element-wise over all peers; every peer gets the same (bit-identical) result.
    ///
    /// # Errors
    /// [`Error::Parallel`] when the peers disagree on the length, a peer does not arrive within
    /// [`ENV_TIMEOUT`], or the connection to another process fails.
    pub fn all_reduce_sum(&self, values: Vec<f64>) -> Result<Vec<f64>> {
        self.hub.reduce(self.local, values, self.remote.as_deref())
    }

    /// Replaces `module`'s trainable parameters by those of process 0, so that every process starts from the same
    /// weights: each process builds its own model, and a fresh LatentRATT or LoRA initialisation is random (as
    /// PyTorch's DDP broadcasts rank 0's parameters at construction). Local peers fork from the returned module.
    /// Only local peer 0 calls it; with one process it returns `module` unchanged.
    ///
    /// # Errors
    /// [`Error::Parallel`] when the processes' trainable parameters differ in size or the connection fails.
    pub fn sync_from_rank0<M: Module>(&self, module: M) -> Result<M> {
        let Some(remote) = &self.remote else {
            return Ok(module);
        };
        let mut mine = ParamValues(Vec::new());
        module.visit(&mut mine);
        let n = mine.0.len();
        // Process 0 brings its values, the others zeros: the sum is process 0's values, exactly.
        let values = if self.rank == 0 { mine.0 } else { vec![0.0; n] };
        let synced = remote
            .lock()
            .map_err(|_| Error::Parallel { message: "the connection to the other processes is poisoned".into() })?
            .all_reduce(values)
            .map_err(|message| Error::Parallel { message })?;
        if synced.len() != n {
            return Err(Error::Parallel {
                message: format!("process 0 has {} trainable values but this process has {n}", synced.len()),
            });
        }
        Ok(module.map(&mut SetParams { values: &synced, at: 0 }))
    }

    /// Sums the gradients of `module`'s trainable parameters and the `scalars` over all peers. Returns the summed
    /// gradients (only the parameters some peer has a gradient for, as one device would) and the summed scalars.
    ///
    /// # Errors
    /// [`Error::Parallel`] naming the failed peers when any share failed (on every peer, so all stop together),
    /// or the errors of [`Peer::all_reduce_sum`].
    pub fn reduce_step<M: Module>(&self, module: &M, share: PeerShare) -> Result<(GradientsParams, Vec<f64>)> {
        let PeerShare { grads, scalars, failure } = share;
        let n_scalars = scalars.len();
        let mut flat =
            Flatten { grads: grads.as_ref(), host: self.burn.is_none(), present: Vec::new(), values: Vec::new() };
        module.visit(&mut flat);
        let Flatten { present, values, .. } = flat;
        let n_params = present.len();
        let mut head = Vec::with_capacity(1 + n_scalars + n_params + values.len());
        head.push(if failure.is_some() { 1.0 } else { 0.0 });
        head.extend(scalars);
        head.extend(present);
        head.extend(values);
        if let Some(message) = &failure {
            tracing::error!(rank = self.rank, message, "data-parallel share failed");
        }
        let summed = self.all_reduce_sum(head)?;
        if summed[0] > 0.0 {
            return Err(Error::Parallel {
                message: match failure {
                    Some(m) => format!("peer {}: {m}", self.rank),
                    None => format!("{} other peer(s) failed their share of the step (see their errors)", summed[0]),
                },
            });
        }
        let scalars = summed[1..1 + n_scalars].to_vec();
        let present: Vec<bool> = summed[1 + n_scalars..1 + n_scalars + n_params].iter().map(|&p| p > 0.0).collect();
        let grads = match &self.burn {
            None => {
                let mut un = Unflatten {
                    values: &summed[1 + n_scalars + n_params..],
                    present: &present,
                    at: 0,
                    index: 0,
                    out: GradientsParams::new(),
                };
                module.visit(&mut un);
                un.out
            }
            Some((devices, _context)) => {
                let mut red = BurnReduce {
                    grads: grads.unwrap_or_default(),
                    devices,
                    present: &present,
                    index: 0,
                    out: GradientsParams::new(),
                };
                module.visit(&mut red);
                red.out
            }
        };
        Ok((grads, scalars))
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn shares_are_round_robin() {
        assert_eq!(shares(5, 0, 2), vec![0, 2, 4]);
        assert_eq!(shares(5, 1, 2), vec![1, 3]);
        assert_eq!(shares(1, 1, 2), Vec::<usize>::new());
    }

    /// Four peers: two processes (over TCP on localhost) of two local peers each; every peer gets the same sum.
    #[test]
    fn host_all_reduce_over_threads_and_processes() {
        let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let addr = format!("127.0.0.1:{port}");
        let handles: Vec<_> = (0..2)
            .map(|rank| {
                let addr = addr.clone();
                std::thread::spawn(move || {
                    let config = ParallelConfig {
                        devices: vec![Device::flex(), Device::flex()],
                        reduction: Reduction::Host,
                        launch: Launch { rank, world_size: 2, coordinator: Some(addr) },
                    };
                    let peers = config.connect().expect("connect");
                    let threads: Vec<_> = peers
                        .into_iter()
                        .map(|peer| {
                            std::thread::spawn(move || {
                                let r = peer.rank() as f64;
                                let a = peer.all_reduce_sum(vec![r, 1.0]).expect("reduce 1");
                                let b = peer.all_reduce_sum(vec![r * r]).expect("reduce 2");
                                (peer.rank(), peer.world_size(), a, b)
                            })
                        })
                        .collect();
                    threads.into_iter().map(|t| t.join().expect("peer")).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = handles.into_iter().flat_map(|h| h.join().expect("process")).collect();
        all.sort_by_key(|x| x.0);
        assert_eq!(all.iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        for (_, world, a, b) in &all {
            assert_eq!(*world, 4);
            assert_eq!(a, &vec![6.0, 4.0]);
            assert_eq!(b, &vec![14.0]);
        }
    }

    #[test]
    fn launch_checks_the_environment_values() {
        let l = Launch { rank: 2, world_size: 2, coordinator: Some("h:1".into()) };
        assert!(l.check().unwrap_err().to_string().contains("outside the world"));
        let l = Launch { rank: 0, world_size: 2, coordinator: None };
        assert!(l.check().unwrap_err().to_string().contains(ENV_COORDINATOR));
    }
}
