//! Durable storage: partition logs made of segments, and the files metadata
//! is kept in. Synchronous I/O only; callers decide on which thread it runs.

pub mod batch;
pub mod epochs;
pub mod fs;
pub mod index;
pub mod log;
pub mod records;
pub mod recovery;
pub mod segment;
pub mod space;

pub use log::{Appended, FsyncPolicy, LogConfig, PartitionLog, RemovedSegments};
