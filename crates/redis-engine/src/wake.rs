//! A single-threaded stand-in for `tokio::sync::Notify`.
//!
//! A client's connection task is the only one that ever waits on its notify, and every
//! notifier runs on the same node thread. tokio's `Notify` is built for many threads: each
//! wait locks a mutex to join a waiter list, which showed up as ~2 % of an unpipelined
//! request. Here a wait is a flag test and, when it must sleep, one stored waker.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub struct LocalNotify {
    /// A notification not yet consumed (as `Notify::notify_one` stores a permit).
    permit: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl LocalNotify {
    pub fn new() -> LocalNotify {
        LocalNotify::default()
    }

    /// Wake the waiting task, or let its next wait return at once.
    pub fn notify_one(&self) {
        self.permit.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub fn notified(&self) -> Notified<'_> {
        Notified(self)
    }
}

pub struct Notified<'a>(&'a LocalNotify);

impl Future for Notified<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let n = self.0;
        if n.permit.replace(false) {
            return Poll::Ready(());
        }
        let keep = match n.waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        n.waker.set(Some(keep));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::LocalNotify;

    #[tokio::test]
    async fn permit_before_wait_and_wake_while_waiting() {
        let n = std::rc::Rc::new(LocalNotify::new());
        n.notify_one();
        n.notified().await;
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let n2 = n.clone();
                let t = tokio::task::spawn_local(async move { n2.notified().await });
                tokio::task::yield_now().await;
                n.notify_one();
                t.await.ok();
            })
            .await;
    }
}
