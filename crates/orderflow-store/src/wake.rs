//! The in-process half of work announcements: one [`Notify`] per kind of [`Work`], so that a
//! burst of webhook deliveries wakes the intake worker and not the workflow workers.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::Work;

#[derive(Debug, Default)]
pub(crate) struct Wakers {
    steps: Arc<Notify>,
    deliveries: Arc<Notify>,
    forwards: Arc<Notify>,
}

impl Wakers {
    pub(crate) fn of(&self, work: Work) -> &Arc<Notify> {
        match work {
            Work::Steps => &self.steps,
            Work::Deliveries => &self.deliveries,
            Work::Forwards => &self.forwards,
        }
    }

    /// `notify_one` keeps a permit when nobody waits, so a worker busy when work arrived
    /// looks again as soon as it is done, and a burst of announcements costs it one wake-up.
    pub(crate) fn wake(&self, work: Work) {
        self.of(work).notify_one();
    }

    pub(crate) fn wake_all(&self) {
        for work in Work::ALL {
            self.wake(work);
        }
    }
}
