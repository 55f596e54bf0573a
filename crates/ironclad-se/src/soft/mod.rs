//! Software backends: keys held by this process, protected at rest by the directory store.

mod dir;
mod key;
mod memory;
mod unlock;

pub use dir::{DirSe, Overwrite, atomic_write};
pub use memory::MemorySe;
pub use unlock::{KdfParams, Unlock};
