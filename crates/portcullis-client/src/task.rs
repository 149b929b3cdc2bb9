//! Session tasks that end visibly, even on a bug.
//!
//! A session's task handles what a server sends. A panic there (a bug in
//! this code or a library, met on some server's data) must end the session
//! with an error a person sees, and must not take the UI's side of the
//! session down with it: the task is run on its own tokio task, its panic is
//! caught there and turned into the session's end, and state shared with the
//! UI is locked with [`lock`], which does not propagate a panic that happened
//! while the lock was held.

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// What a person reads when a session task failed on a bug.
pub const INTERNAL_ERROR: &str =
    "the client failed on the server's data (a bug in Portcullis; the log has the details)";

/// Runs `work` on its own task: its output, or the panic's message when it panicked.
pub async fn guarded<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    match tokio::spawn(work).await {
        Ok(output) => Ok(output),
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            Err(panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned()))
        }
        // Cancelled: the runtime is shutting down.
        Err(e) => Err(e.to_string()),
    }
}

/// Locks `mutex` whether or not a panic poisoned it. For state a session task
/// shares with its UI (a framebuffer, a clipboard text): after a panic it may
/// be half-updated, which is harmless, and the session is ending anyway.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_ends_gives_its_output() {
        assert_eq!(guarded(async { 7 }).await, Ok(7));
    }

    #[tokio::test]
    async fn a_task_that_panics_gives_the_panic_message_and_the_caller_goes_on() {
        let literal = guarded(async {
            if true {
                panic!("decoder index out of range");
            }
        })
        .await;
        assert_eq!(literal, Err("decoder index out of range".to_owned()));
        let formatted = guarded(async {
            let tile = 3;
            if true {
                panic!("tile {tile} is broken");
            }
        })
        .await;
        assert_eq!(formatted, Err("tile 3 is broken".to_owned()));
    }

    #[test]
    fn a_poisoned_lock_still_gives_its_value() {
        let shared = std::sync::Arc::new(Mutex::new(vec![1, 2]));
        let writer = std::sync::Arc::clone(&shared);
        let died = std::thread::spawn(move || {
            let mut pixels = writer.lock().expect("first lock");
            pixels.push(3);
            panic!("a bug while holding the lock");
        })
        .join();
        assert!(died.is_err());
        assert!(shared.is_poisoned());
        assert_eq!(*lock(&shared), vec![1, 2, 3]);
    }
}
