//! The TCP transport between processes (process 0 is the hub of a star); another transport (MPI) can replace
//! it behind [`Transport`].

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::hub::{Transport, sum_in_order, timeout};
use super::{ENV_COORDINATOR, ENV_RANK, Launch};
use crate::error::{Error, Result};

/// The TCP star between processes: process 0 holds a stream to every other process, the others one stream to
/// process 0. A message is a little-endian `u64` count followed by that many little-endian `f64`.
pub(super) struct Remote {
    rank: usize,
    links: Vec<TcpStream>,
}

impl Remote {
    pub(super) fn connect(launch: &Launch) -> Result<Self> {
        let addr = launch.coordinator.clone().unwrap_or_default();
        let io = |what: &str, e: std::io::Error| Error::Parallel {
            message: format!(
                "process {} of {}: {what} {ENV_COORDINATOR}={addr}: {e}; check that the address is this run's \
                 coordinator, reachable from every machine, and that process 0 is started",
                launch.rank, launch.world_size
            ),
        };
        let deadline = Instant::now() + timeout();
        if launch.rank == 0 {
            let listener = TcpListener::bind(&addr).map_err(|e| io("cannot bind", e))?;
            let mut links: Vec<Option<TcpStream>> = (1..launch.world_size).map(|_| None).collect();
            listener.set_nonblocking(true).map_err(|e| io("cannot listen on", e))?;
            while links.iter().any(Option::is_none) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).map_err(|e| io("cannot accept on", e))?;
                        let mut b = [0u8; 8];
                        stream.read_exact(&mut b).map_err(|e| io("handshake failed on", e))?;
                        let r = u64::from_le_bytes(b) as usize;
                        if r == 0 || r >= launch.world_size || links[r - 1].is_some() {
                            return Err(Error::Parallel {
                                message: format!(
                                    "a process announced rank {r} at {addr}, which is 0, out of range or taken: give \
                                     each process its own {ENV_RANK} in 0..{}",
                                    launch.world_size
                                ),
                            });
                        }
                        stream.set_nodelay(true).ok();
                        links[r - 1] = Some(stream);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            return Err(io("timed out waiting for the other processes at", e));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => return Err(io("cannot accept on", e)),
                }
            }
            tracing::info!(world = launch.world_size, %addr, "all processes connected");
            Ok(Remote { rank: 0, links: links.into_iter().flatten().collect() })
        } else {
            let mut stream = loop {
                match TcpStream::connect(&addr) {
                    Ok(s) => break s,
                    Err(e) if Instant::now() > deadline => return Err(io("cannot connect to", e)),
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            };
            stream.set_nodelay(true).ok();
            stream.write_all(&(launch.rank as u64).to_le_bytes()).map_err(|e| io("handshake failed with", e))?;
            Ok(Remote { rank: launch.rank, links: vec![stream] })
        }
    }
}

impl Transport for Remote {
    fn all_reduce(&mut self, values: Vec<f64>) -> std::result::Result<Vec<f64>, String> {
        let err = |e: std::io::Error| format!("process {}: the connection between processes failed: {e}", self.rank);
        if self.rank == 0 {
            let mut parts = vec![values];
            for link in &mut self.links {
                parts.push(read_vec(link).map_err(err)?);
            }
            let sum = sum_in_order(parts)?;
            for link in &mut self.links {
                write_vec(link, &sum).map_err(err)?;
            }
            Ok(sum)
        } else {
            let link = &mut self.links[0];
            write_vec(link, &values).map_err(err)?;
            read_vec(link).map_err(err)
        }
    }
}

fn write_vec(stream: &mut TcpStream, values: &[f64]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(8 + 8 * values.len());
    buf.extend_from_slice(&(values.len() as u64).to_le_bytes());
    for v in values {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    stream.write_all(&buf)?;
    stream.flush()
}

fn read_vec(stream: &mut TcpStream) -> std::io::Result<Vec<f64>> {
    let mut b = [0u8; 8];
    stream.read_exact(&mut b)?;
    let n = u64::from_le_bytes(b) as usize;
    let mut buf = vec![0u8; 8 * n];
    stream.read_exact(&mut buf)?;
    Ok(buf.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}
