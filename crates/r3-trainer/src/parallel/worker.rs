//! The worker threads of the local peers, and [`Peers`]: the fan-out of one optimizer step to them.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::error::Error;

/// A worker thread of a data-parallel trainer (one per local peer but the first): jobs in, one result per job
/// out. Dropping it closes the job channel and joins the thread.
pub struct Worker<J, E = Error> {
    jobs: Option<mpsc::Sender<J>>,
    done: mpsc::Receiver<std::result::Result<(), E>>,
    handle: Option<JoinHandle<()>>,
}

impl<J: Send + 'static, E: From<Error> + Send + 'static> Worker<J, E> {
    /// Starts a thread named `name` that runs `work` on every job until the channel closes.
    ///
    /// # Errors
    /// [`Error::Parallel`] when the thread cannot be started.
    pub fn spawn(
        name: String,
        mut work: impl FnMut(J) -> std::result::Result<(), E> + Send + 'static,
    ) -> std::result::Result<Self, E> {
        let (jobs, rx) = mpsc::channel::<J>();
        let (tx, done) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                for job in rx {
                    if tx.send(work(job)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::Parallel { message: format!("cannot start the thread {name}: {e}") })?;
        Ok(Worker { jobs: Some(jobs), done, handle: Some(handle) })
    }

    /// Hands a job to the thread.
    ///
    /// # Errors
    /// [`Error::Parallel`] when the thread has stopped.
    pub fn send(&self, job: J) -> std::result::Result<(), E> {
        self.jobs.as_ref().and_then(|j| j.send(job).ok()).ok_or_else(|| {
            Error::Parallel { message: "a data-parallel worker thread has stopped (see its error above)".into() }.into()
        })
    }

    /// Waits for the result of the oldest job.
    ///
    /// # Errors
    /// The job's error, or [`Error::Parallel`] when the thread ended without an answer (it panicked).
    pub fn wait(&self) -> std::result::Result<(), E> {
        match self.done.recv() {
            Ok(r) => r,
            Err(_) => Err(Error::Parallel {
                message: "a data-parallel worker thread ended without an answer (it panicked: see above)".into(),
            }
            .into()),
        }
    }
}

impl<J, E> Drop for Worker<J, E> {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(h) = self.handle.take() {
            // A panicking worker already printed its message; the trainer reports the missing answer.
            let _ = h.join();
        }
    }
}

/// The data-parallel peers of a stage: its own peer (local peer 0, which runs on the caller's thread with the
/// stage's model) and one [`Worker`] per other local peer, each owning a replica.
pub struct Peers<J, E = Error> {
    peer: super::Peer,
    workers: Vec<Worker<J, E>>,
}

impl<J: Send + 'static, E: From<Error> + Send + 'static> Peers<J, E> {
    /// Starts one worker thread (named `name-RANK`) per peer of `others`; `make(peer)` builds the work of that
    /// worker (it owns the replica). `peer` is the caller's own peer.
    ///
    /// # Errors
    /// [`Error::Parallel`] when a thread cannot be started, or `make`'s error.
    pub fn start<W>(
        peer: super::Peer,
        others: Vec<super::Peer>,
        name: &str,
        mut make: impl FnMut(super::Peer) -> std::result::Result<W, E>,
    ) -> std::result::Result<Self, E>
    where
        W: FnMut(J) -> std::result::Result<(), E> + Send + 'static,
    {
        let mut workers = Vec::with_capacity(others.len());
        for p in others {
            let rank = p.rank();
            workers.push(Worker::spawn(format!("{name}-{rank}"), make(p)?)?);
        }
        tracing::info!(
            world_size = peer.world_size(),
            rank = peer.rank(),
            local_peers = workers.len() + 1,
            name,
            "data parallelism"
        );
        Ok(Peers { peer, workers })
    }

    /// The caller's own peer.
    pub fn peer(&self) -> &super::Peer {
        &self.peer
    }

    /// One optimizer step over all local peers: hands `job(rank)` to the worker of every other local peer (by
    /// global rank), runs `mine` on the caller's peer, and waits for every worker's answer (they all pass the same
    /// all-reduce). The caller's own error comes first, then the workers'.
    ///
    /// # Errors
    /// `mine`'s error, a worker's error, or [`Error::Parallel`] when a worker has stopped.
    pub fn step<R>(
        &self,
        job: impl Fn(usize) -> J,
        mine: impl FnOnce(&super::Peer) -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E> {
        for (j, w) in self.workers.iter().enumerate() {
            w.send(job(self.peer.rank() + j + 1))?;
        }
        let result = mine(&self.peer);
        let answers: Vec<std::result::Result<(), E>> = self.workers.iter().map(Worker::wait).collect();
        let out = result?;
        answers.into_iter().collect::<std::result::Result<Vec<()>, E>>()?;
        Ok(out)
    }
}
